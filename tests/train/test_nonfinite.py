"""Non-finite steps in the loop: stop naming the step, or skip and count."""

import json

import jax
import numpy as np
import pytest

from cascade_jax.train import checkpoint
from cascade_jax.train import events
from cascade_jax.train import loop
from configs import synthetic

BAD_STEP = 3


def _config(data_dir, skip):
  config = synthetic.get_config()
  config.data.data_dir = str(data_dir)
  config.data.image_size = (64, 64)
  config.data.input_size = (64, 64)
  config.data.num_train = 16
  config.data.num_test = 4
  config.data.worker_count = 0
  config.model.name = 'coarse'
  config.model.bank_widths = (4, 4, 4, 8)
  config.model.head_widths = (8, 8)
  config.train.stage_steps.update(coarse=6, fine=0, joint=0)
  config.train.batch_size = 4
  config.train.log_every = 4
  config.train.checkpoint_every = 2
  config.train.skip_nonfinite = skip
  return config


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp('nonfinite_tfds')


@pytest.fixture
def poisoned(monkeypatch):
  """Makes the targets of the BAD_STEP-th training batch NaN."""
  original = loop.device_batch
  calls = []

  def device_batch(batch, num_devices):
    calls.append(1)
    batch = original(batch, num_devices)
    if len(calls) == BAD_STEP:
      batch = {**batch, 'targets': np.full_like(batch['targets'], np.nan)}
    return batch

  monkeypatch.setattr(loop, 'device_batch', device_batch)


@pytest.mark.slow
def test_a_nonfinite_step_stops_training_and_keeps_the_last_good_checkpoint(
    tmp_path, data_dir, poisoned):
  del poisoned
  workdir = str(tmp_path / 'run')
  # Found at step 4 (a checkpoint step), before its state is saved.
  with pytest.raises(FloatingPointError,
                     match=f'at step {BAD_STEP} \\(stage coarse\\).*step 2 '):
    loop.train_and_evaluate(_config(data_dir, False), workdir)
  manager = checkpoint.make_manager(workdir)
  assert manager.all_steps() == [2]
  params = checkpoint.restore_params(workdir)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))


@pytest.mark.slow
def test_skip_nonfinite_skips_the_step_and_counts_it(tmp_path, data_dir,
                                                    poisoned):
  del poisoned
  workdir = tmp_path / 'run'
  state = loop.train_and_evaluate(_config(data_dir, True), str(workdir))
  assert int(state.step) == 6
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))
  with open(workdir / 'skipped_steps.json') as f:
    assert json.load(f) == [BAD_STEP]
  # Found at step 4 (a log and checkpoint step).
  scalars = events.read_scalars(str(workdir / 'tensorboard'))
  steps, counts = scalars['train/skipped_steps']
  np.testing.assert_array_equal(steps, [4])
  np.testing.assert_array_equal(counts, [1])
  # The logged loss of the interval with the skipped step leaves it out.
  steps, losses = scalars['train/loss']
  np.testing.assert_array_equal(steps, [4, 6])
  assert np.isfinite(losses).all()
  assert 'train/finite' not in scalars


def test_the_skip_count_resumes_with_the_checkpoint(tmp_path):
  (tmp_path / 'skipped_steps.json').write_text('[3, 7]')
  assert loop.NonFiniteSteps(True, str(tmp_path), 6).skipped == [3]
  assert loop.NonFiniteSteps(True, str(tmp_path), 8).skipped == [3, 7]
  assert loop.NonFiniteSteps(True, str(tmp_path / 'new'), 0).skipped == []
