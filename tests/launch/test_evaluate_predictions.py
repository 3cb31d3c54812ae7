"""End-to-end test of launch/evaluate_predictions.py, run as a subprocess."""

import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from cascade_jax.eval import prediction_files as pf

REPO = Path(__file__).parents[2]


def _run(*flags):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run(
      [sys.executable, '-m', 'launch.evaluate_predictions', *flags],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_mpii_end_to_end(tmp_path):
  """4 persons, head size 6 (box diagonal 10); person 3 is 3 px + eps off."""
  rng = np.random.default_rng(0)
  coords = rng.uniform(20, 200, size=(4, 16, 2))
  boxes = np.array([[[0., 0.], [6., 8.]]] * 4) + 10.0
  gt = pf.GroundTruth('mpii', coords, np.ones((4, 16), dtype=bool),
                      head_boxes=boxes)
  gt_path = str(tmp_path / 'gt_valid.mat')
  pf.save_ground_truth_mat(gt_path, gt)
  pred = coords.copy()
  pred[3, :, 0] += 3.0 + 1e-9
  pred_path = str(tmp_path / 'pred.mat')
  pf.save_official_predictions(pred_path, pred, 'mpii')

  result = _run('--dataset=mpii', f'--ground_truth={gt_path}',
                f'--predictions={pred_path}')
  assert result.returncode == 0, result.stderr
  assert 'MPII official (Matlab)' in result.stdout
  assert 'HRNet python port' in result.stdout
  assert ' 75.0' in result.stdout
  out = json.loads((tmp_path / 'pred.scores.json').read_text())
  assert out['num_examples'] == 4
  assert out['scores']['mpii_official']['columns']['Total'] == 0.75
  assert out['scores']['mpii_hrnet']['columns']['Mean'] == 0.75


def test_lsp_npy_with_output_flag_and_error(tmp_path):
  joints = np.random.default_rng(1).uniform(0, 100, size=(3, 14, 2000))
  gt_path = str(tmp_path / 'joints.mat')
  scipy.io.savemat(gt_path, {'joints': joints})
  pred_path = str(tmp_path / 'pred.npy')
  np.save(pred_path, joints[:2, :, 1000:].transpose(2, 1, 0))
  output = str(tmp_path / 'scores.json')
  result = _run('--dataset=lsp', f'--ground_truth={gt_path}',
                f'--predictions={pred_path}')
  assert result.returncode != 0  # a .npy file does not declare its base
  assert 'does not declare' in result.stderr
  assert '--index_base=0 or 1' in result.stderr
  result = _run('--dataset=lsp', f'--ground_truth={gt_path}',
                f'--predictions={pred_path}', f'--output={output}',
                '--index_base=1')  # joints.mat's own 1-based pixels
  assert result.returncode == 0, result.stderr
  assert json.loads(Path(output).read_text())['scores']['lsp']['columns'][
      'Total'] == 1.0
  np.save(pred_path, np.zeros((999, 14, 2)))
  result = _run('--dataset=lsp', f'--ground_truth={gt_path}',
                f'--predictions={pred_path}', '--index_base=0')
  assert result.returncode != 0
  assert '1000 x 14 x 2' in result.stderr


def test_index_base_flag_shifts_by_one(tmp_path):
  """joints.mat's own 1-based pixels as predictions: exact when named
  1-based; named 0-based they are read 1 px off, which the LSP torso of
  50 px turns into misses at r = 0 and hits at r = 0.03 (1.5 px)."""
  joints = np.zeros((3, 14, 2000))
  joints[0] = np.arange(14)[:, None] * 10.0 + 1.0
  joints[:2, 9] = 1.0  # l_shoulder (1, 1)
  joints[0, 2], joints[1, 2] = 31.0, 41.0  # r_hip: torso ||(30, 40)|| = 50
  gt_path = str(tmp_path / 'joints.mat')
  scipy.io.savemat(gt_path, {'joints': joints})
  pred_path = str(tmp_path / 'pred.npy')
  np.save(pred_path, joints[:2, :, 1000:].transpose(2, 1, 0))
  curves = {}
  for base in ('0', '1'):
    output = str(tmp_path / f'{base}.json')
    result = _run('--dataset=lsp', f'--ground_truth={gt_path}',
                  f'--predictions={pred_path}', f'--index_base={base}',
                  f'--output={output}')
    assert result.returncode == 0, result.stderr
    curves[base] = json.loads(Path(output).read_text())['scores']['lsp'][
        'curves']['Total']
  assert curves['1'][0] == 1.0
  assert curves['0'][0] == 0.0 and curves['0'][3] == 1.0


def test_project_file_against_specimen_gt_valid_is_unshifted(tmp_path):
  """save_predictions writes 0-based pixels and says so: scored against the
  1-based specimen gt_valid.mat, its copy of the ground truth is exact at
  r = 0 (the old -1 shift of every file made it 1 px off: 0 at r = 0)."""
  path = REPO.parent / 'shared' / 'specimens' / 'mpii' / 'gt_valid.mat'
  if not path.exists():
    pytest.skip(f'specimen {path} absent')
  gt = pf.load_ground_truth(str(path), 'mpii')
  pred_path = str(tmp_path / 'ours.json')
  pf.save_predictions(pred_path, gt.coords)
  result = _run('--dataset=mpii', f'--ground_truth={path}',
                f'--predictions={pred_path}')
  assert result.returncode == 0, result.stderr
  scores = json.loads((tmp_path / 'ours.scores.json').read_text())['scores']
  for convention in ('mpii_official', 'mpii_hrnet'):
    total = 'Total' if convention == 'mpii_official' else 'Mean'
    assert scores[convention]['curves'][total][0] == 1.0
