"""Orbax checkpoints: bit-exact round trip of state and data-iterator position."""

import chex
import grain.python as grain
import jax
import ml_collections
import numpy as np
import pytest

from cascade_jax.model import coarse
from cascade_jax.train import checkpoint
from cascade_jax.train import stages
from cascade_jax.train import state as state_lib


def _state(seed):
  model = coarse.CoarseHeatmapModel(num_joints=2, pooling=4,
                                    bank_widths=(2, 2, 2, 4), head_widths=(4, 4))
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


def _loader():
  return grain.DataLoader(
      data_source=grain.RangeDataSource(0, 20, 1),
      sampler=grain.IndexSampler(20, shuffle=True, seed=0, num_epochs=None),
      operations=[grain.Batch(2)])


def test_save_and_restore_round_trip_bit_exactly(tmp_path):
  saved = _state(0)
  manager = checkpoint.make_manager(str(tmp_path))
  config = ml_collections.ConfigDict({'seed': 3, 'train': {'steps': 10}})
  data = iter(_loader())
  for _ in range(3):
    next(data)
  checkpoint.save(manager, 1, saved, data, config)
  expected_batches = [next(data) for _ in range(3)]

  iterator = iter(_loader())
  restored = checkpoint.restore(checkpoint.make_manager(str(tmp_path)),
                                _state(1), iterator)
  chex.assert_trees_all_equal(restored.params, saved.params)
  chex.assert_trees_all_equal(restored.opt_state, saved.opt_state)
  assert int(restored.step) == 1
  np.testing.assert_array_equal(restored.key, saved.key)
  for expected in expected_batches:
    np.testing.assert_array_equal(next(iterator), expected)
  assert checkpoint.restore_config(str(tmp_path)).seed == 3


def test_restore_without_checkpoint_names_the_directory(tmp_path):
  with pytest.raises(FileNotFoundError, match=str(tmp_path)):
    checkpoint.restore(checkpoint.make_manager(str(tmp_path)), _state(0))


def test_only_the_last_checkpoints_are_kept(tmp_path):
  manager = checkpoint.make_manager(str(tmp_path), keep=2)
  config = ml_collections.ConfigDict({'seed': 0})
  for step in (1, 2, 3):
    checkpoint.save(manager, step, _state(0), None, config)
  assert manager.all_steps() == [2, 3]


def test_warm_start_takes_the_saved_parts_and_keeps_new_ones(tmp_path):
  saved = _state(0)
  manager = checkpoint.make_manager(str(tmp_path))
  checkpoint.save(manager, 5, saved, None, ml_collections.ConfigDict())
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
