"""Tests for cascade_jax.eval.plots: PNGs are written and readable."""

import matplotlib.image
import numpy as np
import pytest

from cascade_jax import joint_sets
from cascade_jax.eval import metrics
from cascade_jax.eval import plots

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _check_png(path):
  data = path.read_bytes()
  assert data[:8] == _PNG_SIGNATURE
  image = matplotlib.image.imread(path)
  assert image.ndim == 3 and image.shape[0] > 0 and image.shape[1] > 0
  assert image.std() > 0  # something was drawn


def test_plot_pck_curves_writes_png(tmp_path):
  t = metrics.DEFAULT_THRESHOLDS
  curves = {'4x': np.clip(t * 6, 0, 1), '8x': np.clip(t * 5, 0, 1)}
  out = plots.plot_pck_curves(t, curves, tmp_path / 'sub' / 'pck.png',
                              title='FLIC wrist')
  assert out == tmp_path / 'sub' / 'pck.png'
  _check_png(out)


def test_plot_per_joint_curves_writes_png(tmp_path):
  t = metrics.DEFAULT_THRESHOLDS
  flic = joint_sets.FLIC
  curve = np.clip(np.outer(t, np.linspace(3, 8, flic.num_joints)), 0, 1)
  curve[:, flic.index('l_eye')] = np.nan  # unlabelled joint: no crash
  copy = curve.copy()
  curve.setflags(write=False)
  out = plots.plot_per_joint_curves(t, curve, flic, str(tmp_path / 'flic.png'))
  _check_png(out)
  np.testing.assert_array_equal(curve, copy)


def test_plot_rejects_mismatched_curve(tmp_path):
  t = metrics.DEFAULT_THRESHOLDS
  with pytest.raises(ValueError, match="'bad'"):
    plots.plot_pck_curves(t, {'bad': t[:5]}, tmp_path / 'x.png')
  with pytest.raises(ValueError, match='T = 21'):
    plots.plot_per_joint_curves(t, np.zeros((5, 11)), joint_sets.FLIC,
                                tmp_path / 'y.png')


def test_plot_training_curves_has_one_panel_per_series(tmp_path):
  steps = np.arange(1, 11)
  series = {f'train/{k}': (steps, 1.0 / steps) for k in
            ('loss', 'e1', 'e2', 'grad_norm', 'images_per_second')}
  out = plots.plot_training_curves(series, tmp_path / 'training.png',
                                   stage_ends=[5])
  _check_png(out)
  # 3 panels per row at 420 x 300 px: 5 series take 2 rows.
  assert matplotlib.image.imread(out).shape[:2] == (600, 1260)
  two = plots.plot_training_curves(dict(list(series.items())[:2]),
                                   tmp_path / 'two.png')
  assert matplotlib.image.imread(two).shape[:2] == (300, 840)
  with pytest.raises(ValueError, match='empty'):
    plots.plot_training_curves({}, tmp_path / 'none.png')
