"""Generic PCK metrics: torso size, normalised distances, PCK curves, AUC.

Pure numpy; no function mutates its inputs. Conventions (DESIGN sections 5-6):
N examples, J joints, T thresholds; coordinates [N, J, 2] in (x, y) pixels of
one common frame; ``visible`` [N, J] marks the ground-truth joints that are
labelled (others are ignored, whatever their coordinates, NaN included).

A prediction is correct at threshold r if ||pred - gt|| <= r * norm, inclusive,
with ``norm`` [N] a per-example length chosen by the caller (here the torso,
||l_shoulder - r_hip||, `torso_size`). Dataset-specific official conventions
(FLIC's swap of backward-facing labels, MPII's PCKh with head boxes) are
named functions in official.py that call these with their own ``norm``.
"""

from __future__ import annotations

import numpy as np

from cascade_jax import joint_sets as joint_sets_lib

# Curves over r in [0, 0.2] in steps of 0.01 (DESIGN section 6).
DEFAULT_THRESHOLDS = np.linspace(0.0, 0.2, 21)


def _check_coords(name: str, coords: np.ndarray) -> np.ndarray:
  coords = np.asarray(coords, dtype=np.float64)
  if coords.ndim != 3 or coords.shape[-1] != 2:
    raise ValueError(f'{name} must have shape [N, J, 2], got {coords.shape}')
  return coords


def _check_norm(norm, num_examples: int) -> np.ndarray:
  norm = np.asarray(norm, dtype=np.float64)
  if norm.shape != (num_examples,):
    raise ValueError(f'norm must have shape [N] = ({num_examples},), '
                     f'got {norm.shape}')
  bad = np.flatnonzero(~(np.isfinite(norm) & (norm > 0)))
  if bad.size:
    raise ValueError(f'norm must be finite and > 0; examples {bad[:10].tolist()} '
                     f'have {norm[bad[:10]].tolist()} (drop examples whose '
                     'normalising joints are unlabelled before scoring)')
  return norm


def _check_thresholds(thresholds) -> np.ndarray:
  thresholds = np.asarray(thresholds, dtype=np.float64)
  if thresholds.ndim != 1 or thresholds.size == 0:
    raise ValueError(f'thresholds must be a non-empty [T] array, '
                     f'got shape {thresholds.shape}')
  if not np.all(np.isfinite(thresholds)) or np.any(thresholds < 0):
    raise ValueError(f'thresholds must be finite and >= 0, got {thresholds}')
  return thresholds


def torso_size(gt, joint_set: joint_sets_lib.JointSet, visible) -> np.ndarray:
  """Torso length ||gt[torso[0]] - gt[torso[1]]|| per example, NaN if unusable.

  Unusable: either torso joint unlabelled, or a zero or non-finite length.
  MPII stores an unlabelled joint as (0, 0): its distance to the other torso
  joint is no torso, and would make nearly every prediction correct.

  Args:
    gt: [N, J, 2] ground-truth joints in ``joint_set`` order.
    joint_set: gives the torso pair (by default l_shoulder, r_hip).
    visible: [N, J] bool, the labelled ground-truth joints.

  Returns:
    [N] float64 torso lengths in pixels; NaN for the unusable examples,
    which torso PCK leaves out (and counts).
  """
  gt = _check_coords('gt', gt)
  if gt.shape[1] != joint_set.num_joints:
    raise ValueError(f'gt has {gt.shape[1]} joints but joint set '
                     f'{joint_set.name!r} has {joint_set.num_joints}')
  visible = np.asarray(visible, dtype=bool)
  if visible.shape != gt.shape[:2]:
    raise ValueError(f'visible must have shape [N, J] = {gt.shape[:2]}, '
                     f'got {visible.shape}')
  a, b = joint_set.torso_indices
  size = np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
  with np.errstate(invalid='ignore'):
    usable = visible[:, a] & visible[:, b] & np.isfinite(size) & (size > 0)
  return np.where(usable, size, np.nan)


def normalised_distances(pred, gt, norm) -> np.ndarray:
  """Distance of each prediction to its ground truth, divided by ``norm``.

  Args:
    pred: [N, J, 2] predicted joints.
    gt: [N, J, 2] ground-truth joints.
    norm: [N] positive per-example normalising length (torso, head size).

  Returns:
    [N, J] float64 ||pred - gt|| / norm (NaN where either input is NaN).
  """
  pred = _check_coords('pred', pred)
  gt = _check_coords('gt', gt)
  if pred.shape != gt.shape:
    raise ValueError(f'pred {pred.shape} and gt {gt.shape} shapes differ')
  norm = _check_norm(norm, gt.shape[0])
  return np.linalg.norm(pred - gt, axis=-1) / norm[:, None]


def correct_joints(pred, gt, visible, norm, thresholds=DEFAULT_THRESHOLDS
                   ) -> np.ndarray:
  """[T, N, J] bool: joint j of example n is labelled and within
  thresholds[t] * norm[n] of its ground truth (the one definition of a
  correct joint, which `pck_counts` sums).

  Args: as `pck`.
  """
  pred = _check_coords('pred', pred)
  gt = _check_coords('gt', gt)
  if pred.shape != gt.shape:
    raise ValueError(f'pred {pred.shape} and gt {gt.shape} shapes differ')
  visible = np.asarray(visible)
  if visible.shape != gt.shape[:2]:
    raise ValueError(f'visible must have shape [N, J] = {gt.shape[:2]}, '
                     f'got {visible.shape}')
  visible = visible.astype(bool)
  norm = _check_norm(norm, gt.shape[0])
  thresholds = _check_thresholds(thresholds)
  # Compare in pixels (not dist / norm) so that a distance of exactly
  # thr * norm counts as correct without a division rounding it up.
  with np.errstate(invalid='ignore'):
    dist = np.linalg.norm(pred - gt, axis=-1)  # [N, J]; NaN never <= anything
    within = dist[None] <= thresholds[:, None, None] * norm[None, :, None]
  return within & visible[None]


def pck_counts(pred, gt, visible, norm, thresholds=DEFAULT_THRESHOLDS
               ) -> tuple[np.ndarray, np.ndarray]:
  """Correct and labelled counts behind `pck`, for pooling over batches/joints.

  Args: as `pck`.

  Returns:
    (correct [T, J] int64, labelled [J] int64): the number of visible joints
    with ||pred - gt|| <= thr * norm, and the number of visible joints.
  """
  correct = correct_joints(pred, gt, visible, norm, thresholds)
  labelled = np.sum(np.asarray(visible, bool), axis=0, dtype=np.int64)
  return np.sum(correct, axis=1, dtype=np.int64), labelled


def pck(pred, gt, visible, norm, thresholds=DEFAULT_THRESHOLDS) -> np.ndarray:
  """Percentage of Correct Keypoints per threshold and joint, as a fraction.

  Args:
    pred: [N, J, 2] predicted joints.
    gt: [N, J, 2] ground-truth joints.
    visible: [N, J] bool (or 0/1); False marks an unlabelled ground truth,
      which is left out of both numerator and denominator.
    norm: [N] positive per-example normalising length (e.g. `torso_size`).
    thresholds: [T] normalised distances r >= 0.

  Returns:
    [T, J] float64 in [0, 1]: the fraction of visible examples of joint j
    with ||pred - gt|| <= thresholds[t] * norm. A joint with no visible
    example has NaN in its column (undefined, not 0).
  """
  correct, labelled = pck_counts(pred, gt, visible, norm, thresholds)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(labelled > 0, correct / np.maximum(labelled, 1), np.nan)


def pck_curve_auc(thresholds, curve) -> np.ndarray | float:
  """Area under a PCK curve, normalised by the threshold range to [0, 1].

  Args:
    thresholds: [T] strictly increasing thresholds, T >= 2.
    curve: [T] or [T, J] PCK values in [0, 1] (e.g. from `pck`).

  Returns:
    Trapezoid area / (thresholds[-1] - thresholds[0]): a float for a [T]
    curve, [J] float64 for a [T, J] curve (NaN where the column is NaN).
  """
  thresholds = np.asarray(thresholds, dtype=np.float64)
  curve = np.asarray(curve, dtype=np.float64)
  if thresholds.ndim != 1 or thresholds.size < 2:
    raise ValueError(f'thresholds must be a [T] array with T >= 2, '
                     f'got shape {thresholds.shape}')
  if not np.all(np.diff(thresholds) > 0):
    raise ValueError(f'thresholds must be strictly increasing, got {thresholds}')
  if curve.ndim not in (1, 2) or curve.shape[0] != thresholds.size:
    raise ValueError(f'curve must have shape [T] or [T, J] with '
                     f'T = {thresholds.size}, got {curve.shape}')
  area = np.trapezoid(curve, thresholds, axis=0)
  area = area / (thresholds[-1] - thresholds[0])
  return float(area) if curve.ndim == 1 else area


def pck_counts_from_distances(dist, visible, thresholds
                              ) -> tuple[np.ndarray, np.ndarray]:
  """Counts as `pck_counts`, from already normalised distances d / norm.

  The official toolkits (MPII's Matlab, its HRNet port, the FLIC and LSP
  scripts) divide first and then compare ``d / norm <= r``; this replays that
  order exactly (at a tie the two orders can round differently).

  Args:
    dist: [N, J] normalised distances; +inf counts as wrong (a missing
      prediction), NaN is only allowed where ``visible`` is False.
    visible: [N, J] bool (or 0/1): the labelled ground-truth joints.
    thresholds: [T] normalised thresholds r >= 0.

  Returns:
    (correct [T, J] int64, labelled [J] int64).
  """
  dist = np.asarray(dist, dtype=np.float64)
  if dist.ndim != 2:
    raise ValueError(f'dist must have shape [N, J], got {dist.shape}')
  visible = np.asarray(visible)
  if visible.shape != dist.shape:
    raise ValueError(f'visible must have shape [N, J] = {dist.shape}, '
                     f'got {visible.shape}')
  visible = visible.astype(bool)
  bad = np.isnan(dist) & visible
  if bad.any():
    n, j = np.argwhere(bad)[0]
    raise ValueError(f'dist is NaN for a labelled joint (example {n}, joint '
                     f'{j}); give a missing prediction +inf, not NaN')
  thresholds = _check_thresholds(thresholds)
  with np.errstate(invalid='ignore'):
    within = dist[None] <= thresholds[:, None, None]
  correct = np.sum(within & visible[None], axis=1, dtype=np.int64)
  labelled = np.sum(visible, axis=0, dtype=np.int64)
  return correct, labelled
