"""Orbax checkpoints: bit-exact round trip of the state, kept steps, faults."""

import os

import chex
import grain.checkpoint as grain_checkpoint
import grain.python as grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest

from cascade_jax.model import coarse
from cascade_jax.train import checkpoint
from cascade_jax.train import loop
from cascade_jax.train import stages
from cascade_jax.train import state as state_lib
from configs import synthetic


def _state(seed, bank_widths=(2, 2, 2, 4), head_widths=(4, 4)):
  model = coarse.CoarseHeatmapModel(num_joints=2, pooling=4,
                                    bank_widths=bank_widths,
                                    head_widths=head_widths)
  config = ml_collections.ConfigDict(dict(
      optimizer='adam', learning_rate=1e-3, warmup_steps=2,
      weight_decay=0.0, grad_clip_norm=0.0))
  state = state_lib.create_train_state(model, (1, 32, 32, 3),
                                       jax.random.PRNGKey(seed),
                                       stages.make_optimizer(config, 10))
  # Take one step so the optimiser moments are not all zeros.
  grads = jax.tree.map(lambda p: jax.random.normal(jax.random.PRNGKey(1),
                                                   p.shape), state.params)
  return state.apply_gradients(grads=grads)


def test_save_and_restore_round_trip_bit_exactly(tmp_path):
  saved = _state(0)
  manager = checkpoint.make_manager(str(tmp_path))
  config = ml_collections.ConfigDict({'seed': 3, 'train': {'steps': 10}})
  checkpoint.save(manager, 1, saved, config)

  restored = checkpoint.restore(checkpoint.make_manager(str(tmp_path)),
                                _state(1))
  chex.assert_trees_all_equal(restored.params, saved.params)
  chex.assert_trees_all_equal(restored.opt_state, saved.opt_state)
  assert int(restored.step) == 1
  np.testing.assert_array_equal(restored.key, saved.key)
  assert checkpoint.restore_config(str(tmp_path)).seed == 3


def test_a_checkpoint_with_the_data_iterator_still_restores(tmp_path):
  """Checkpoints written before global batches also hold the grain
  iterator's position ('data'), which is no longer read."""
  saved = _state(0)
  directory = tmp_path / 'checkpoints'
  old_manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(create=True),
      item_names=('state', 'data', 'config'))
  data = iter(grain.DataLoader(
      data_source=grain.RangeDataSource(0, 20, 1),
      sampler=grain.IndexSampler(20, shuffle=True, seed=0, num_epochs=None),
      operations=[grain.Batch(2)]))
  next(data)
  old_manager.save(4, args=ocp.args.Composite(
      state=ocp.args.StandardSave(saved),
      data=grain_checkpoint.CheckpointSave(data),
      config=ocp.args.JsonSave({'seed': 3})))
  old_manager.wait_until_finished()
  assert (directory / '4' / 'data').is_dir()
  restored = checkpoint.restore(checkpoint.make_manager(str(tmp_path)),
                                _state(1))
  chex.assert_trees_all_equal(restored.params, saved.params)
  chex.assert_trees_all_equal(restored.opt_state, saved.opt_state)
  assert checkpoint.restore_config(str(tmp_path)).seed == 3


def test_restore_without_checkpoint_names_the_directory(tmp_path):
  with pytest.raises(FileNotFoundError, match=str(tmp_path)):
    checkpoint.restore(checkpoint.make_manager(str(tmp_path)), _state(0))


def test_only_the_last_checkpoints_are_kept(tmp_path):
  manager = checkpoint.make_manager(str(tmp_path), keep=2)
  config = ml_collections.ConfigDict({'seed': 0})
  for step in (1, 2, 3):
    checkpoint.save(manager, step, _state(0), config)
  assert manager.all_steps() == [2, 3]


def test_warm_start_takes_the_saved_parts_and_keeps_new_ones(tmp_path):
  saved = _state(0)
  manager = checkpoint.make_manager(str(tmp_path))
  checkpoint.save(manager, 5, saved, ml_collections.ConfigDict())
  fresh = {'coarse': _state(1).params, 'spatial': {'biases': np.ones(3)}}
  merged = checkpoint.warm_start(
      fresh, {'coarse': checkpoint.restore_params(str(tmp_path))}, 'run')
  chex.assert_trees_all_equal(merged['coarse'], saved.params)
  chex.assert_trees_all_equal(merged['spatial'], fresh['spatial'])
  with pytest.raises(ValueError, match="'spatial' of run do not match"):
    checkpoint.warm_start(fresh, {'spatial': {'biases': np.ones(4)}}, 'run')
  with pytest.raises(ValueError, match="parameters 'fine'"):
    checkpoint.warm_start(fresh, {'fine': {}}, 'run')
  with pytest.raises(FileNotFoundError, match='init_from'):
    checkpoint.restore_params(str(tmp_path / 'empty'))


def test_warm_start_of_named_parts_leaves_the_others_fresh():
  # A cascade with a wider fine model starts from a trained coarse model:
  # the saved 'fine' (of other shapes) is not taken, nor checked.
  fresh = {'coarse': {'w': np.zeros(3)}, 'fine': {'w': np.zeros(5)}}
  saved = {'coarse': {'w': np.arange(3.0)}, 'fine': {'w': np.ones(2)}}
  merged = checkpoint.warm_start(fresh, saved, 'run', parts=('coarse',))
  np.testing.assert_array_equal(merged['coarse']['w'], [0.0, 1.0, 2.0])
  np.testing.assert_array_equal(merged['fine']['w'], np.zeros(5))
  with pytest.raises(ValueError, match=r"run has no parameters \['spatial'\]"):
    checkpoint.warm_start(fresh, saved, 'run', parts=('spatial',))


def test_restore_into_another_architecture_names_the_parameters(tmp_path):
  manager = checkpoint.make_manager(str(tmp_path))
  config = ml_collections.ConfigDict({'model': {'bank_widths': (2, 2, 2, 4)}})
  checkpoint.save(manager, 3, _state(0), config)
  with pytest.raises(ValueError, match=(
      r'step 3 of .*checkpoints holds another architecture than this model '
      r'\(9 parameter arrays differ\):\n  bank0/conv3/bias: \(2,\) saved, '
      r'\(3,\) here\n  bank0/conv3/kernel: \(5, 5, 2, 2\) saved, '
      r'\(5, 5, 2, 3\) here\n(.|\n)*It was saved with the model config '
      r'\{"bank_widths": \[2, 2, 2, 4\]\}')):
    checkpoint.restore(manager, _state(0, bank_widths=(2, 2, 3, 4)))
  with pytest.raises(ValueError, match=r'head2/kernel: not saved, \(1, 1, 4, '
                     r'4\) in this model'):
    checkpoint.restore(manager, _state(0, head_widths=(4, 4, 4)))


def test_architecture_mismatch_names_the_config_keys_and_reads_no_array(
    tmp_path, monkeypatch):
  manager = checkpoint.make_manager(str(tmp_path))
  saved_model = {'bank_widths': (2, 2, 2, 4), 'pooling': 8}
  checkpoint.save(manager, 3, _state(0),
                  ml_collections.ConfigDict({'model': saved_model}))
  restored_items = []
  restore = manager.restore

  def recording_restore(step, args):
    restored_items.extend(args.keys())
    return restore(step, args=args)

  monkeypatch.setattr(manager, 'restore', recording_restore)
  model_here = ml_collections.ConfigDict(
      {'bank_widths': (2, 2, 3, 4), 'pooling': 8, 'extra_input': True})
  with pytest.raises(ValueError, match=(
      r'The model config here differs from the saved one in: bank_widths '
      r'\(saved: \[2, 2, 2, 4\], here: \[2, 2, 3, 4\]\), extra_input '
      r'\(saved: not set, here: true\)$')):
    checkpoint.restore(manager, _state(0, bank_widths=(2, 2, 3, 4)),
                       model_config=model_here)
  # Only the saved config was read: no array read was started and abandoned.
  assert restored_items == ['config']


# The aborted save leaves the config writer's coroutine unawaited.
@pytest.mark.filterwarnings('ignore:coroutine .* was never awaited')
def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
  saved = _state(0)
  config = ml_collections.ConfigDict({'seed': 0})
  # keep=1: step 1 would be the one removed if step 2 were complete.
  checkpoint.save(checkpoint.make_manager(str(tmp_path), keep=1), 1, saved,
                  config)

  def fail(*args, **kwargs):
    raise OSError(28, 'No space left on device')

  # The state's writer fails once Orbax has begun step 2.
  monkeypatch.setattr(ocp.StandardCheckpointHandler, 'async_save', fail)
  with pytest.raises(RuntimeError, match=(
      r'saving checkpoint step 2 to .*checkpoints failed: .*No space left on '
      r'device.*; the latest complete checkpoint is still step 1')):
    checkpoint.save(checkpoint.make_manager(str(tmp_path), keep=1), 2,
                    _state(1), config)
  monkeypatch.undo()
  manager = checkpoint.make_manager(str(tmp_path), keep=1)
  assert manager.all_steps() == [1]
  restored = checkpoint.restore(manager, _state(1))
  chex.assert_trees_all_equal(restored.params, saved.params)
  chex.assert_trees_all_equal(restored.opt_state, saved.opt_state)
  # Saving works again once the cause is gone.
  checkpoint.save(manager, 2, restored, config)
  assert checkpoint.make_manager(str(tmp_path), keep=1).all_steps() == [2]


@pytest.mark.parametrize('how', ['under_a_file', 'read_only'])
def test_unwritable_workdir_is_named_before_training(tmp_path, monkeypatch,
                                                     how):
  workdir = tmp_path / 'run'
  if how == 'under_a_file':
    (tmp_path / 'file').write_text('')
    workdir = tmp_path / 'file' / 'run'
  elif os.geteuid() == 0:  # Root writes to read-only directories.
    def refuse(*args, **kwargs):
      raise PermissionError(13, 'Permission denied')
    monkeypatch.setattr(checkpoint.tempfile, 'TemporaryFile', refuse)
  else:
    (workdir / 'checkpoints').mkdir(parents=True)
    (workdir / 'checkpoints').chmod(0o500)
  with pytest.raises(OSError, match=rf'cannot write checkpoints to '
                     rf'{workdir}/checkpoints \(--workdir={workdir}\): '
                     '(Not a directory|Permission denied)'):
    checkpoint.check_writable(str(workdir))
  monkeypatch.undo()
  checkpoint.check_writable(str(tmp_path / 'fine'))


def test_training_stops_at_an_unwritable_workdir_before_the_data(tmp_path):
  (tmp_path / 'file').write_text('')
  config = synthetic.get_config()
  config.data.data_dir = str(tmp_path / 'tfds')
  with pytest.raises(OSError, match='cannot write checkpoints to .*file/run'):
    loop.train_and_evaluate(config, str(tmp_path / 'file' / 'run'))
  assert not (tmp_path / 'tfds').exists()
