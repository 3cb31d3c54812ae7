"""Tests for cascade_jax.eval.metrics against hand-computed values."""

import numpy as np
import pytest

from cascade_jax import joint_sets
from cascade_jax.eval import metrics


def _hand_case():
  """2 examples, 3 joints; norms 10 and 20, so r = 0.1 / 0.2 means 1, 2 / 2, 4 px.

  Offsets pred - gt (pixels):
    example 0: j0 (1, 0) = 1 (exactly 0.1), j1 (0, 1.5) = 1.5,
               j2 (0, 2 + 1e-9) (just beyond 0.2).
    example 1: j0 (0, -4) = 4 (exactly 0.2), j1 (-2, 0) = 2 (exactly 0.1),
               j2 (4 + 1e-9, 0) (just beyond 0.2).
  """
  gt = np.array([[[10., 20.], [30., 40.], [50., 60.]],
                 [[5., 7.], [11., 13.], [17., 19.]]])
  offsets = np.array([[[1., 0.], [0., 1.5], [0., 2. + 1e-9]],
                      [[0., -4.], [-2., 0.], [4. + 1e-9, 0.]]])
  pred = gt + offsets
  visible = np.ones((2, 3), dtype=bool)
  norm = np.array([10., 20.])
  thresholds = np.array([0.1, 0.2])
  return pred, gt, visible, norm, thresholds


def test_pck_hand_case_inclusive_threshold():
  pred, gt, visible, norm, thresholds = _hand_case()
  got = metrics.pck(pred, gt, visible, norm, thresholds)
  expected = np.array([[0.5, 0.5, 0.0],
                       [1.0, 1.0, 0.0]])
  np.testing.assert_array_equal(got, expected)


def test_pck_counts_hand_case():
  pred, gt, visible, norm, thresholds = _hand_case()
  correct, labelled = metrics.pck_counts(pred, gt, visible, norm, thresholds)
  np.testing.assert_array_equal(correct, [[1, 1, 0], [2, 2, 0]])
  np.testing.assert_array_equal(labelled, [2, 2, 2])


def test_pck_ignores_invisible_joints_even_nan():
  pred, gt, visible, norm, thresholds = _hand_case()
  visible = visible.copy()
  visible[1, 0] = False  # the miss at r = 0.1 for joint 0
  gt = gt.copy()
  gt[1, 0] = np.nan  # an unlabelled joint may hold anything
  got = metrics.pck(pred, gt, visible, norm, thresholds)
  np.testing.assert_array_equal(got[:, 0], [1.0, 1.0])
  np.testing.assert_array_equal(got[:, 1:], [[0.5, 0.0], [1.0, 0.0]])


def test_pck_nan_for_joint_without_visible_labels():
  pred, gt, visible, norm, thresholds = _hand_case()
  visible = visible.copy()
  visible[:, 2] = False
  got = metrics.pck(pred, gt, visible, norm, thresholds)
  assert np.all(np.isnan(got[:, 2]))
  assert np.all(np.isfinite(got[:, :2]))


def test_pck_accepts_int_visibility():
  pred, gt, visible, norm, thresholds = _hand_case()
  np.testing.assert_array_equal(
      metrics.pck(pred, gt, visible.astype(np.int32), norm, thresholds),
      metrics.pck(pred, gt, visible, norm, thresholds))


def test_pck_norm_scaling():
  pred, gt, visible, norm, _ = _hand_case()
  # Doubling the norm at r equals the original norm at 2r.
  np.testing.assert_array_equal(
      metrics.pck(pred, gt, visible, 2 * norm, [0.1]),
      metrics.pck(pred, gt, visible, norm, [0.2]))
  # Halving it: joint 0 at r = 0.2 now allows 1 / 2 px; only example 0 is in.
  got = metrics.pck(pred, gt, visible, norm / 2, [0.2])
  np.testing.assert_array_equal(got, [[0.5, 0.5, 0.0]])
  # Scaling every length by 4 changes nothing.
  np.testing.assert_array_equal(
      metrics.pck(4 * pred, 4 * gt, visible, 4 * norm, [0.1, 0.2]),
      metrics.pck(pred, gt, visible, norm, [0.1, 0.2]))


def test_pck_curve_is_monotone_with_default_thresholds():
  rng = np.random.default_rng(0)
  gt = rng.uniform(0, 100, size=(50, 11, 2))
  pred = gt + rng.normal(0, 5, size=gt.shape)
  pred[:5] = gt[:5]  # exact hits: the only ones correct at r = 0
  visible = rng.uniform(size=(50, 11)) > 0.2
  norm = np.linalg.norm(gt[:, 0] - gt[:, 7], axis=-1)  # l_sho - r_hip
  curve = metrics.pck(pred, gt, visible, norm)
  assert curve.shape == (21, 11)
  np.testing.assert_allclose(metrics.DEFAULT_THRESHOLDS[[0, -1]], [0.0, 0.2])
  assert np.all(np.diff(curve, axis=0) >= 0)
  np.testing.assert_allclose(curve[0], visible[:5].sum(0) / visible.sum(0))
  assert np.all((curve >= 0) & (curve <= 1))


def test_torso_size_hand_case():
  gt = np.zeros((2, joint_sets.FLIC.num_joints, 2))
  lsho, rhip = joint_sets.FLIC.torso_indices
  gt[0, lsho], gt[0, rhip] = (0., 0.), (3., 4.)
  gt[1, lsho], gt[1, rhip] = (1., 1.), (7., 9.)
  gt[1, joint_sets.FLIC.index('r_shoulder')] = (100., 100.)  # not the torso
  visible = np.ones((2, joint_sets.FLIC.num_joints), bool)
  np.testing.assert_allclose(
      metrics.torso_size(gt, joint_sets.FLIC, visible), [5., 10.])


def test_torso_size_mpii_uses_lsho_rhip():
  mpii = joint_sets.MPII
  gt = np.zeros((1, mpii.num_joints, 2))
  gt[0, mpii.index('l_shoulder')] = (2., 2.)
  gt[0, mpii.index('r_hip')] = (2., 10.)
  gt[0, mpii.index('r_shoulder')] = (30., 2.)  # ||rsho - lhip|| = 30: unused
  np.testing.assert_allclose(
      metrics.torso_size(gt, mpii, np.ones((1, 16), bool)), [8.])


def test_torso_size_nan_when_a_torso_joint_is_unlabelled():
  """MPII stores an unlabelled joint as (0, 0): person 0's r_hip is one, so
  ||lsho - (0, 0)|| = 500 px would pass for its torso; it is NaN instead.
  Person 1 has both labelled but at the same place: NaN too."""
  mpii = joint_sets.MPII
  gt = np.zeros((3, mpii.num_joints, 2))
  visible = np.ones((3, mpii.num_joints), bool)
  gt[:, mpii.index('l_shoulder')] = (300., 400.)
  visible[0, mpii.index('r_hip')] = False
  gt[1, mpii.index('r_hip')] = (300., 400.)
  gt[2, mpii.index('r_hip')] = (300., 460.)
  np.testing.assert_array_equal(metrics.torso_size(gt, mpii, visible),
                                [np.nan, np.nan, 60.])


def test_torso_size_rejects_wrong_shapes():
  with pytest.raises(ValueError, match='11'):
    metrics.torso_size(np.zeros((2, 16, 2)), joint_sets.FLIC,
                       np.ones((2, 16), bool))
  with pytest.raises(ValueError, match=r'visible must have shape \[N, J\]'):
    metrics.torso_size(np.zeros((2, 11, 2)), joint_sets.FLIC,
                       np.ones((2, 16), bool))


def test_normalised_distances_hand_case():
  gt = np.array([[[0., 0.], [1., 1.]]])
  pred = np.array([[[3., 4.], [1., 1.]]])
  np.testing.assert_allclose(
      metrics.normalised_distances(pred, gt, [10.]), [[0.5, 0.0]])


def test_auc_constant_and_ramp():
  t = metrics.DEFAULT_THRESHOLDS
  assert metrics.pck_curve_auc(t, np.ones_like(t)) == pytest.approx(1.0)
  assert metrics.pck_curve_auc(t, t / t[-1]) == pytest.approx(0.5)
  assert metrics.pck_curve_auc(t, np.zeros_like(t)) == pytest.approx(0.0)
  # Normalised by the range, not by the upper end: [0.1, 0.3] ramp 0 -> 1.
  assert metrics.pck_curve_auc([0.1, 0.3], [0.0, 1.0]) == pytest.approx(0.5)


def test_auc_per_joint_columns():
  t = np.array([0.0, 0.1, 0.2])
  curve = np.array([[1.0, 0.0, np.nan],
                    [1.0, 0.5, np.nan],
                    [1.0, 1.0, np.nan]])
  got = metrics.pck_curve_auc(t, curve)
  np.testing.assert_allclose(got[:2], [1.0, 0.5])
  assert np.isnan(got[2])


def test_auc_rejects_unsorted_thresholds():
  with pytest.raises(ValueError, match='increasing'):
    metrics.pck_curve_auc([0.2, 0.1], [1.0, 1.0])


@pytest.mark.parametrize('bad_norm', [[10., 0.], [10., np.nan], [10., -1.]])
def test_pck_rejects_bad_norm(bad_norm):
  pred, gt, visible, _, thresholds = _hand_case()
  with pytest.raises(ValueError, match=r'examples \[1\]'):
    metrics.pck(pred, gt, visible, bad_norm, thresholds)


def test_pck_rejects_bad_shapes():
  pred, gt, visible, norm, thresholds = _hand_case()
  with pytest.raises(ValueError, match=r'\(2, 2, 2\)'):
    metrics.pck(pred[:, :2], gt, visible, norm, thresholds)
  with pytest.raises(ValueError, match='visible'):
    metrics.pck(pred, gt, visible[:, :2], norm, thresholds)
  with pytest.raises(ValueError, match='norm'):
    metrics.pck(pred, gt, visible, norm[:1], thresholds)
  with pytest.raises(ValueError, match='thresholds'):
    metrics.pck(pred, gt, visible, norm, [[0.1]])


def test_inputs_not_mutated():
  pred, gt, visible, norm, thresholds = _hand_case()
  args = [pred, gt, visible, norm, thresholds]
  copies = [a.copy() for a in args]
  for a in args:
    a.setflags(write=False)  # any in-place write would raise
  metrics.pck(*args)
  metrics.pck_counts(*args)
  metrics.normalised_distances(pred, gt, norm)
  metrics.pck_curve_auc(thresholds, np.array([0.5, 1.0]))
  for a, c in zip(args, copies):
    np.testing.assert_array_equal(a, c)
