"""Tests for cascade_jax.eval.official: hand-computed cases and real specimens."""

from pathlib import Path

import numpy as np
import pytest

from cascade_jax import joint_sets
from cascade_jax.eval import metrics
from cascade_jax.eval import official
from cascade_jax.eval import prediction_files
from cascade_jax.eval import tables

SPECIMENS = Path(__file__).parents[2].parent / 'shared' / 'specimens'
MPII = joint_sets.MPII
FLIC = joint_sets.FLIC


def _specimen(relative):
  path = SPECIMENS / relative
  if not path.exists():
    pytest.skip(f'specimen {path} absent')
  return str(path)


# ------------------------------------------------------------ metrics / tables


def test_pck_counts_from_distances_inclusive_and_inf():
  dist = np.array([[0.5, np.inf, np.nan], [0.5000001, 0.0, 0.2]])
  visible = np.array([[True, True, False], [True, True, True]])
  correct, labelled = metrics.pck_counts_from_distances(dist, visible, [0.5])
  np.testing.assert_array_equal(correct, [[1, 1, 1]])
  np.testing.assert_array_equal(labelled, [2, 2, 1])


def test_pck_counts_from_distances_rejects_nan_for_labelled_joint():
  with pytest.raises(ValueError, match='example 0, joint 0'):
    metrics.pck_counts_from_distances([[np.nan]], [[True]], [0.5])


def test_combine_columns_mean_and_pooled():
  per_joint = np.full(MPII.num_joints, np.nan)
  counts = np.zeros(MPII.num_joints, dtype=int)
  per_joint[MPII.index('l_wrist')], counts[MPII.index('l_wrist')] = 1.0, 1
  per_joint[MPII.index('r_wrist')], counts[MPII.index('r_wrist')] = 0.5, 3
  columns = (tables.Column('Wrist', ('l_wrist', 'r_wrist')),
             tables.Column('Pooled', ('l_wrist', 'r_wrist'), pooled=True))
  got = tables.combine_columns(per_joint, MPII, columns, counts)
  assert got['Wrist'] == pytest.approx(0.75)
  assert got['Pooled'] == pytest.approx((1 + 1.5) / 4)
  with pytest.raises(ValueError, match='give counts'):
    tables.combine_columns(per_joint, MPII, columns)


# ------------------------------------------------------------------------ MPII


def _mpii_hand_case():
  """2 persons, head box (0,0)-(6,8): diagonal 10, head size 6, r=0.5 -> 3 px.

  Person 0: every joint shifted by exactly (3, 0): d / h = 0.5, at threshold.
  Person 1: exact except head_top shifted 3 + 1e-9 (miss), l_wrist predicted
    NaN (miss), r_wrist missing in the ground truth (ignored).
  """
  rng = np.random.default_rng(0)
  gt = rng.uniform(20, 200, size=(2, 16, 2))
  visible = np.ones((2, 16), dtype=bool)
  visible[1, MPII.index('r_wrist')] = False
  pred = gt.copy()
  pred[0, :, 0] += 3.0
  pred[1, MPII.index('head_top'), 0] += 3.0 + 1e-9
  pred[1, MPII.index('l_wrist')] = np.nan
  boxes = np.array([[[0., 0.], [6., 8.]]] * 2) + 50.0
  return pred, gt, visible, boxes


def test_mpii_head_size():
  _, _, _, boxes = _mpii_hand_case()
  np.testing.assert_array_equal(official.mpii_head_sizes(boxes), [6.0, 6.0])


def test_mpii_official_hand_case():
  pred, gt, visible, boxes = _mpii_hand_case()
  inputs = [a.copy() for a in (pred, gt, visible, boxes)]
  s = official.mpii_pckh(pred, gt, visible, boxes, official.MPII_OFFICIAL)
  for before, after in zip(inputs, (pred, gt, visible, boxes)):
    np.testing.assert_array_equal(before, after)  # inputs untouched
  # Head = mean(upper_neck 2/2, head_top 1/2); '<=' keeps person 0 at 0.5.
  assert s.columns['Head'] == pytest.approx(0.75)
  assert s.columns['Shoulder'] == 1.0
  assert s.columns['Wrist'] == pytest.approx((1 / 1 + 1 / 2) / 2)
  # UBody pools the 6 arm joints: 11 labelled, l_wrist of person 1 missed.
  assert s.columns['UBody'] == pytest.approx(10 / 11)
  # Total pools 14 joints: 27 labelled, 2 misses.
  assert s.columns['Total'] == pytest.approx(25 / 27)
  assert s.counts[MPII.index('r_wrist')] == 1
  assert 'Mean' not in s.columns


def test_mpii_hrnet_hand_case():
  pred, gt, visible, boxes = _mpii_hand_case()
  s = official.mpii_pckh(pred, gt, visible, boxes, official.MPII_HRNET)
  assert s.columns['Head'] == pytest.approx(0.5)  # head_top only
  assert s.columns['Mean'] == pytest.approx(25 / 27)
  assert 'UBody' not in s.columns
  # Mean@0.1 is read at r = 0.11 (0.66 px): person 0 (3 px off) all miss,
  # person 1 hits its 11 exact joints of 13 labelled.
  assert official.HRNET_MEAN_AT_01_THRESHOLD == pytest.approx(0.11)
  assert s.extras['Mean@0.1'] == pytest.approx(11 / 27)


@pytest.mark.parametrize('convention', official.MPII_CONVENTIONS)
def test_mpii_both_conventions_inclusive_at_threshold(convention):
  """Both toolkits compare with '<=': exactly 0.5 * head size is correct."""
  _, gt, visible, boxes = _mpii_hand_case()
  at = gt.copy()
  at[..., 0] += 3.0
  beyond = gt.copy()
  beyond[..., 0] += 3.0 + 1e-9
  last = 'Total' if convention == official.MPII_OFFICIAL else 'Mean'
  assert official.mpii_pckh(at, gt, visible, boxes,
                            convention).columns[last] == 1.0
  assert official.mpii_pckh(beyond, gt, visible, boxes,
                            convention).columns[last] == 0.0


def test_mpii_unknown_convention():
  pred, gt, visible, boxes = _mpii_hand_case()
  with pytest.raises(ValueError, match='official'):
    official.mpii_pckh(pred, gt, visible, boxes, 'matlab')


def test_mpii_specimen_self_and_half_shifted(tmp_path):
  gt = prediction_files.load_ground_truth(_specimen('mpii/gt_valid.mat'),
                                          'mpii')
  assert gt.num_examples == 2958
  # Through the official writer and back (1-based pos_pred_src).
  path = str(tmp_path / 'pred.mat')
  prediction_files.save_official_predictions(path, gt.coords, 'mpii')
  pred = prediction_files.load_predictions(path, gt)
  for s in official.score('mpii', pred, gt):
    assert all(v == 1.0 for v in s.columns.values()), s.convention
  # Shift every joint of the even persons by 0.5 * head size + eps in x.
  head = official.mpii_head_sizes(gt.head_boxes)
  shifted = gt.coords.copy()
  shifted[::2, :, 0] += (0.5 * head[::2] * (1 + 1e-9))[:, None]
  scored = [MPII.index(j) for j in MPII.joints
            if j not in ('pelvis', 'thorax')]
  vis = gt.visible[:, scored]
  expected = vis[1::2].sum() / vis.sum()
  by_name = {s.convention: s for s in official.score('mpii', shifted, gt)}
  assert by_name['mpii_official'].columns['Total'] == pytest.approx(expected)
  assert by_name['mpii_hrnet'].columns['Mean'] == pytest.approx(expected)
  assert 0.45 < expected < 0.55


# ------------------------------------------------------------------------ FLIC


def _flic_example(backward: bool):
  """One FLIC example: torso ||lsho - rhip|| = 100 px when front-facing."""
  xy = {'l_shoulder': (160, 100), 'r_shoulder': (100, 100),
        'l_elbow': (170, 150), 'r_elbow': (90, 150),
        'l_wrist': (175, 200), 'r_wrist': (85, 200),
        'l_hip': (160, 180), 'r_hip': (100, 180),
        'l_eye': (135, 60), 'r_eye': (125, 60), 'nose': (130, 70)}
  gt = np.array([xy[j] for j in FLIC.joints], dtype=np.float64)
  gt[:, 1] -= 20.0  # torso: (60, 80) -> 100 px
  if backward:  # person-centric labels of a person seen from behind
    gt = gt[FLIC.flip_permutation]
  return gt


def test_flic_backward_rules_and_swapped_sets():
  gt = np.stack([_flic_example(False), _flic_example(True)])
  visible = np.ones((2, 11), dtype=bool)
  for swap in official.FLIC_SWAPS:
    np.testing.assert_array_equal(official.flic_backward_facing(gt, swap),
                                  [False, True])
  all_pairs, _, _ = official.flic_observer_centric(
      gt, visible, official.FLIC_SWAP_ALL_PAIRS)
  np.testing.assert_array_equal(all_pairs[1], _flic_example(False))
  modec, _, _ = official.flic_observer_centric(gt, visible,
                                               official.FLIC_SWAP_MODEC)
  arms = [FLIC.index(f'{s}_{b}') for s in 'lr'
          for b in ('shoulder', 'elbow', 'wrist')]
  others = [j for j in range(11) if j not in arms]
  np.testing.assert_array_equal(modec[1, arms], _flic_example(False)[arms])
  np.testing.assert_array_equal(modec[1, others], gt[1, others])
  np.testing.assert_array_equal(gt[1], _flic_example(True))  # not mutated


def test_flic_pck_swaps_ground_truth_only():
  """Predictions observer-centric; r = 0.05 of a 100 px torso is 5 px."""
  gt = np.stack([_flic_example(False), _flic_example(True)])
  visible = np.ones((2, 11), dtype=bool)
  observer = np.stack([_flic_example(False)] * 2)
  pred = observer.copy()
  pred[0, FLIC.index('nose'), 0] += 5.0  # exactly at threshold: correct
  pred[0, FLIC.index('l_wrist'), 1] += 5.0 + 1e-9  # just beyond: miss
  s = official.flic_pck(pred, gt, visible, official.FLIC_SWAP_ALL_PAIRS)
  assert list(s.columns) == ['Head', 'Shoulder', 'Elbow', 'Wrist']
  assert s.columns == {'Head': 1.0, 'Shoulder': 1.0, 'Elbow': 1.0,
                       'Wrist': pytest.approx(0.75)}
  assert '1 of 2' in s.notes[0]
  # The raw person-centric labels as predictions miss the swapped arms.
  raw = official.flic_pck(gt, gt, visible, official.FLIC_SWAP_ALL_PAIRS)
  assert raw.columns['Wrist'] == 0.5 and raw.columns['Head'] == 1.0
  with_hip = official.flic_pck(observer, gt, visible, include_hip=True)
  assert with_hip.columns['Hip'] == 0.5  # MODEC keeps hip labels


def test_flic_specimen_self():
  gt = prediction_files.load_ground_truth(_specimen('flic/examples.mat'),
                                          'flic')
  assert gt.num_examples == 1016
  for swap in official.FLIC_SWAPS:
    observer, _, backward = official.flic_observer_centric(
        gt.coords, gt.visible, swap)
    assert backward.sum() == 48
    s = official.flic_pck(observer, gt.coords, gt.visible, swap)
    assert all(v == 1.0 for v in s.columns.values())
    assert all(v == pytest.approx(1.0) for v in s.auc.values())
    raw = official.flic_pck(gt.coords, gt.coords, gt.visible, swap)
    assert raw.columns['Head'] == 1.0
    assert raw.columns['Wrist'] == pytest.approx((1016 - 48) / 1016)


# ------------------------------------------------------------------------- LSP


def test_lsp_hand_case_and_occluded_counted():
  gt = np.zeros((2, 14, 2))
  gt[:, :, 0] = np.arange(14) * 10.0
  lsp = joint_sets.LSP
  gt[:, lsp.index('l_shoulder')] = (0.0, 0.0)
  gt[:, lsp.index('r_hip')] = (30.0, 40.0)  # torso 50 -> r = 0.2 is 10 px
  pred = gt.copy()
  pred[0, :, 1] += 10.0  # exactly at threshold
  pred[1, lsp.index('head_top'), 1] += 10.0 + 1e-9
  s = official.lsp_pck(pred, gt)
  assert s.columns['Head'] == pytest.approx((1.0 + 0.5) / 2)  # neck, head top
  assert s.columns['Total'] == pytest.approx(27 / 28)
  np.testing.assert_array_equal(s.counts, 2)


def test_lsp_specimen_self_and_shift():
  gt = prediction_files.load_ground_truth(_specimen('lsp/joints.mat'), 'lsp')
  assert gt.num_examples == 1000 and gt.occluded.any()
  assert all(v == 1.0 for v in
             official.lsp_pck(gt.coords, gt.coords).columns.values())
  torso = metrics.torso_size(gt.coords, joint_sets.LSP, gt.visible)
  shifted = gt.coords.copy()
  shifted[:250, :, 0] += (0.2 * torso[:250] * (1 + 1e-9))[:, None]
  s = official.lsp_pck(shifted, gt.coords, gt.visible)
  assert s.columns['Total'] == pytest.approx(0.75)
  np.testing.assert_array_equal(s.counts, 1000)
