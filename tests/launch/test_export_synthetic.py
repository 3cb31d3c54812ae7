"""End to end on files in the original formats: launch.export_synthetic ->
the real builder -> a training step of a cascade with the MRF -> evaluation ->
launch.evaluate_predictions on the written prediction file, which must give
the figures launch.eval printed."""

import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from cascade_jax.eval import evaluate
from cascade_jax.model import spatial_kernels
from cascade_jax.train import loop
from configs import flic_cpu
from configs import mpii_cpu

REPO = Path(__file__).parents[2]


def _launch(module, *flags):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-m', module, *flags], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def _tiny(config, manual_dir, data_dir, input_size):
  """``config`` at a test's size, the MRF included: 1 training step."""
  config.data.manual_dir = str(manual_dir)
  config.data.data_dir = str(data_dir)
  config.data.input_size = input_size
  config.data.worker_count = 0
  # The configs hold out 'train[:400]' for the MRF's choice of joints; these
  # exports are smaller, and the MRF's stage is skipped.
  config.data.train_split = 'train'
  config.model.bank_widths = (4, 4, 4, 8)
  config.model.head_widths = (8, 8)
  config.model.fine_bank_widths = (4, 4)
  config.model.fine_hidden_width = 8
  config.model.context = 16
  config.model.spatial.kernel_file = str(Path(data_dir) / 'kernels.npz')
  # One coarse step: the other stages add compilations (most of this test's
  # time), not coverage of the data path. The MRF (at its initial values,
  # the identity) and the fine model still run in the evaluation, the MRF
  # on the torso inputs the builder gives.
  config.train.stage_steps.update(coarse=1, spatial=0, fine=0, joint=0)
  config.train.batch_size = 4
  config.train.warmup_steps = 0
  config.train.log_every = 1
  config.eval.batch_size = 8
  return config


def _train_and_evaluate(config, workdir):
  kernels, graph, count = spatial_kernels.from_training_split(config)
  spatial_kernels.save(config.model.spatial.kernel_file, kernels, graph,
                       config.model.pooling, count)
  loop.train_and_evaluate(config, workdir)
  return evaluate.evaluate_checkpoint(config, workdir)


def _assert_same_scores(printed: dict, scored: dict):
  """launch.eval's official scores == launch.evaluate_predictions' on the
  prediction file, convention by convention, column by column."""
  assert set(printed) == set(scored)
  for convention, ours in printed.items():
    theirs = scored[convention]
    assert ours['counts'] == theirs['counts'], convention
    for part in ('columns', 'per_joint'):
      assert set(ours[part]) == set(theirs[part])
      for key, value in ours[part].items():
        if value is None:
          assert theirs[part][key] is None, (convention, key)
        else:
          assert theirs[part][key] == pytest.approx(value, abs=1e-9), (
              convention, part, key)


@pytest.mark.slow
def test_flic_export_end_to_end(tmp_path):
  manual = tmp_path / 'manual'
  _launch('launch.export_synthetic', '--format=flic', f'--out={manual}',
          '--image_size=48,64', '--num_train=8', '--num_test=8',
          '--back_facing_prob=0.5')
  config = _tiny(flic_cpu.get_config(), manual, tmp_path / 'tfds', (64, 48))
  workdir = str(tmp_path / 'run')
  results = _train_and_evaluate(config, workdir)
  assert 'spatial' in results['methods']
  final = evaluate.final_method(results['methods'])
  scored = _score_written_file(workdir, 'flic',
                                f'{manual}/FLIC/examples.mat')
  assert scored['num_examples'] == 8
  _assert_same_scores(results['methods'][final]['official'], scored['scores'])


def _score_written_file(workdir: str, dataset: str, ground_truth: str):
  """launch.evaluate_predictions on launch.eval's written official file;
  returns the scores JSON it writes beside it."""
  prediction_file = f'{workdir}/eval/{dataset}_predictions.mat'
  _launch('launch.evaluate_predictions', f'--dataset={dataset}',
          f'--ground_truth={ground_truth}', f'--predictions={prediction_file}')
  return json.loads(Path(prediction_file.replace(
      '.mat', '.scores.json')).read_text())


@pytest.mark.slow
def test_mpii_export_end_to_end(tmp_path):
  manual = tmp_path / 'manual'
  _launch('launch.export_synthetic', '--format=mpii', f'--out={manual}',
          '--image_size=64,64', '--num_train=6', '--num_test=6',
          '--num_unlabelled=1', '--distractor_prob=0.5',
          '--distractor_range=1,2')
  config = _tiny(mpii_cpu.get_config(), manual, tmp_path / 'tfds', (32, 32))
  config.data.valid_split_file = str(manual / 'valid_annolist.mat')
  workdir = str(tmp_path / 'run')
  results = _train_and_evaluate(config, workdir)
  final = evaluate.final_method(results['methods'])
  predictions = np.load(f'{workdir}/eval/predictions.npz')
  assert len(predictions[final]) == 6
  # PCKh from the head boxes of the exported split file.
  scored = _score_written_file(workdir, 'mpii', f'{manual}/valid_annolist.mat')
  assert scored['num_examples'] == 6
  _assert_same_scores(results['methods'][final]['official'], scored['scores'])
