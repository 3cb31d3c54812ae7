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
