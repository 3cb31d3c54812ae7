"""End to end: train a tiny config on tiny synthetic data, resume, evaluate."""

import json
import os
import shutil

import chex
import numpy as np
import pytest

from cascade_jax.eval import evaluate
from cascade_jax.train import checkpoint
from cascade_jax.train import loop
from configs import synthetic


def _tiny_config(data_dir):
  config = synthetic.get_config()
  config.data.data_dir = str(data_dir)
  config.data.image_size = (64, 64)
  config.data.input_size = (64, 64)
  config.data.num_train = 24
  config.data.num_test = 6
  config.data.worker_count = 0
  config.model.bank_widths = (4, 4, 4, 8)
  config.model.head_widths = (8, 8)
  config.model.name = 'coarse'
  config.train.stage_steps.update(coarse=4, fine=0, joint=0)
  config.train.batch_size = 4
  config.train.log_every = 2
  config.train.checkpoint_every = 2
  config.train.eval_every = 4
  config.eval.batch_size = 4
  return config


@pytest.mark.slow
def test_train_resume_and_evaluate(tmp_path):
  config = _tiny_config(tmp_path / 'tfds')
  straight = loop.train_and_evaluate(config, str(tmp_path / 'straight'))
  assert int(straight.step) == 4

  # A run stopped after step 2 (its later checkpoint removed), then the same
  # command again: it must land on the uninterrupted run's parameters.
  shutil.copytree(tmp_path / 'straight', tmp_path / 'resumed')
  shutil.rmtree(tmp_path / 'resumed' / 'checkpoints' / '4')
  assert checkpoint.make_manager(str(tmp_path / 'resumed')).latest_step() == 2
  resumed = loop.train_and_evaluate(config, str(tmp_path / 'resumed'))
  for part in ('params', 'opt_state', 'step', 'key'):
    chex.assert_trees_all_equal(getattr(resumed, part),
                                getattr(straight, part))
  manager = checkpoint.make_manager(str(tmp_path / 'resumed'))
  assert manager.latest_step() == 4

  results = evaluate.evaluate_checkpoint(config, str(tmp_path / 'straight'))
  out_dir = tmp_path / 'straight' / 'eval'
  with open(out_dir / 'results.json') as f:
    assert json.load(f)['step'] == 4
  assert os.path.getsize(out_dir / 'pck_curves.png') > 0
  predictions = np.load(out_dir / 'predictions.npz')
  assert predictions['coarse'].shape == (6, 11, 2)
  assert 0.0 <= results['methods']['coarse']['mean_pck']['0.20'] <= 1.0
  assert (tmp_path / 'straight' / 'tensorboard').is_dir()
