"""Dataset-official scoring: FLIC PCK, MPII PCKh (two conventions), LSP PCK.

Each function replays one public evaluation script, and the conventions are
named, not hidden behind flags (DESIGN section 6). All of them divide first
and then compare, ``||pred - gt|| / norm <= r`` (inclusive), as the scripts
do; a NaN prediction counts as a miss (MPII's ``pred(isnan(pred)) = inf``).

FLIC (`flic_pck`), as MODEC's eval_dataset.m, the dataset authors' script
(Sapp & Taskar; the Table 3 prior-art numbers): the *ground truth* of
backward-facing examples is made observer-centric by
flip_backwards_facing_groundtruth.m; predictions are never swapped (a model
trained on observer-centric labels predicts them). A model trained on the raw
person-centric labels (ours) is scored by `flic_pck_person_centric`, which
first makes its predictions observer-centric by the same rule. Norm
||lsho - rhip|| of the swapped ground truth; curves over r in [0, 0.2],
Table 3 at r = 0.05.
Two named swap rules:
  - `FLIC_SWAP_MODEC` (default): backward if every arm joint has
    l.x < r.x (shoulder, elbow and wrist); swap shoulders, elbows, wrists
    only (hips and eyes keep their labels), exactly as MODEC.
  - `FLIC_SWAP_ALL_PAIRS`: backward if rsho.x > lsho.x; swap every
    left/right pair (hips and eyes too), DESIGN section 6's wording.
  On the real test split both flag the same 48 of 1016 examples; they differ
  only in the hips and eyes of those 48 (and so in their torso length).

MPII (`mpii_pckh`): head size 0.6 x head-box diagonal; missing joints ignored.
  - `MPII_OFFICIAL` (evaluatePCKh.m / computePCK.m / genTablePCK.m): Head =
    mean of upper-neck and head-top PCKh; UBody pools the 6 arm joints
    (shoulders, elbows, wrists: no head); Total pools the 14 joints (pelvis
    and thorax dropped); curve r in 0:0.01:0.5 (AUC of Total over it).
  - `MPII_HRNET` (HRNet's lib/dataset/mpii.py, SC_BIAS 0.6, threshold 0.5,
    jnt_visible = 1 - jnt_missing): Head = head top only; Mean pools the 14
    joints (= official Total); no UBody; 'Mean@0.1' reads pckAll[11] of
    rng = arange(0, 0.51, 0.01), i.e. r = 0.11, reproduced as such.
  Both compare with '<=' (no '<' anywhere), so a joint exactly at the
  threshold is correct under both.

LSP (`lsp_pck`), as Pishchulin's evaluatePCK.m: person-centric joints.mat,
test images 1001-2000, norm ||lsho - rhip||, every joint scored (the
occlusion flag is ignored), Head = mean of neck and head top, Total pools all
14; curve r in 0:0.01:0.2, headline r = 0.2.

Torso-normalised scores (FLIC, LSP) leave out the examples whose two torso
joints are not both labelled (`metrics.torso_size`) and say how many in
their notes. Column definitions (Head, UBody, ...) are tables.py's.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from cascade_jax import joint_sets as joint_sets_lib
from cascade_jax.eval import metrics
from cascade_jax.eval import prediction_files
from cascade_jax.eval import tables

Column = tables.Column

FLIC_THRESHOLDS = np.linspace(0.0, 0.2, 21)
FLIC_THRESHOLD = 0.05  # paper Table 3
LSP_THRESHOLDS = np.linspace(0.0, 0.2, 21)
LSP_THRESHOLD = 0.2
MPII_THRESHOLDS = np.linspace(0.0, 0.5, 51)  # Matlab 0:0.01:0.5
MPII_THRESHOLD = 0.5  # paper Table 4
MPII_SC_BIAS = 0.6  # head size = 0.6 * head-box diagonal (0.8 * 0.75)
# HRNet's curve and the threshold its 'Mean@0.1' actually reads (index 11).
HRNET_THRESHOLDS = np.arange(0.0, 0.5 + 0.01, 0.01)
HRNET_MEAN_AT_01_THRESHOLD = float(HRNET_THRESHOLDS[11])

FLIC_SWAP_MODEC = 'modec_arms'
FLIC_SWAP_ALL_PAIRS = 'all_pairs'
FLIC_SWAPS = (FLIC_SWAP_MODEC, FLIC_SWAP_ALL_PAIRS)
MPII_OFFICIAL = 'official'
MPII_HRNET = 'hrnet'
MPII_CONVENTIONS = (MPII_OFFICIAL, MPII_HRNET)


_MPII_14 = tuple(j for j in joint_sets_lib.MPII.joints
                 if j not in ('pelvis', 'thorax'))
# One definition of each group (Head, UBody, ...): tables.py's.
_MPII_GROUPS = tables.group_columns(joint_sets_lib.MPII)

_FLIC_GROUPS = {c.name: c for c in tables.group_columns(joint_sets_lib.FLIC)}
FLIC_COLUMNS = tuple(_FLIC_GROUPS[g] for g in ('Head', 'Shoulder', 'Elbow',
                                               'Wrist'))  # paper Table 3
MPII_OFFICIAL_COLUMNS = _MPII_GROUPS + (
    tables.upper_body_column(joint_sets_lib.MPII),
    Column('Total', _MPII_14, pooled=True))
MPII_HRNET_COLUMNS = ((Column('Head', ('head_top',)),) + _MPII_GROUPS[1:] +
                      (Column('Mean', _MPII_14, pooled=True),))
LSP_COLUMNS = tables.group_columns(joint_sets_lib.LSP) + (
    Column('Total', joint_sets_lib.LSP.joints, pooled=True),)


@dataclasses.dataclass(frozen=True)
class OfficialScores:
  """The result of one official scoring convention.

  Attributes:
    convention: e.g. 'flic_modec_arms', 'mpii_official', 'mpii_hrnet', 'lsp'.
    joint_set: the dataset's joints.
    threshold: the headline normalised threshold (Table 3: 0.05, 4: 0.5).
    per_joint: [J] PCK fractions at ``threshold`` (NaN: no labelled example).
    counts: [J] labelled ground-truth joints.
    columns: table row at ``threshold``: {column: fraction}.
    thresholds: [T] curve thresholds.
    curves: {column: [T] fractions}.
    auc: {column: area under its curve / threshold range, in [0, 1]}.
    extras: further official numbers (HRNet's 'Mean@0.1'), fractions.
    notes: facts a reader needs (examples swapped, thresholds used).
  """
  convention: str
  joint_set: joint_sets_lib.JointSet
  threshold: float
  per_joint: np.ndarray
  counts: np.ndarray
  columns: dict[str, float]
  thresholds: np.ndarray
  curves: dict[str, np.ndarray]
  auc: dict[str, float]
  extras: dict[str, float] = dataclasses.field(default_factory=dict)
  notes: tuple[str, ...] = ()

  def to_json_dict(self) -> dict:
    """Plain-JSON summary (fractions; NaN -> None)."""
    def clean(v):
      v = float(v)
      return None if np.isnan(v) else v
    return {
        'convention': self.convention,
        'joint_set': self.joint_set.name,
        'threshold': self.threshold,
        'columns': {k: clean(v) for k, v in self.columns.items()},
        'auc': {k: clean(v) for k, v in self.auc.items()},
        'extras': {k: clean(v) for k, v in self.extras.items()},
        'per_joint': {j: clean(v) for j, v in
                      zip(self.joint_set.joints, self.per_joint)},
        'counts': {j: int(c) for j, c in zip(self.joint_set.joints,
                                             self.counts)},
        'thresholds': [float(t) for t in self.thresholds],
        'curves': {k: [clean(x) for x in v] for k, v in self.curves.items()},
        'notes': list(self.notes),
    }


def _fractions(correct, labelled) -> np.ndarray:
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(labelled > 0, correct / np.maximum(labelled, 1), np.nan)


def _normalised_distances(pred, gt, visible, norm) -> np.ndarray:
  """[N, J] ||pred - gt|| / norm with NaN predictions as +inf (a miss)."""
  pred = np.asarray(pred, dtype=np.float64)
  gt = np.asarray(gt, dtype=np.float64)
  visible = np.asarray(visible, dtype=bool)
  if gt.shape != visible.shape + (2,):
    raise ValueError(f'gt {gt.shape} and visible {visible.shape} must be '
                     '[N, J, 2] and [N, J]')
  bad = visible & ~np.all(np.isfinite(gt), axis=-1)
  if bad.any():
    n, j = np.argwhere(bad)[0]
    raise ValueError(f'ground truth of example {n}, joint {j} is labelled '
                     f'but not finite: {gt[n, j].tolist()}')
  pred = np.where(np.isnan(pred), np.inf, pred)
  # Unlabelled joints may hold NaN; their distance is masked by `visible`.
  gt = np.where(visible[..., None], gt, 0.0)
  return metrics.normalised_distances(pred, gt, norm)


def _score(convention, joint_set, dist, visible, thresholds, threshold,
           columns, extras=None, notes=()) -> OfficialScores:
  correct, labelled = metrics.pck_counts_from_distances(
      dist, visible, np.asarray([threshold]))
  per_joint = _fractions(correct[0], labelled)
  curve_correct, _ = metrics.pck_counts_from_distances(dist, visible,
                                                       thresholds)
  curve = _fractions(curve_correct, labelled)
  row = tables.combine_columns(per_joint, joint_set, columns, labelled)
  curves = tables.combine_columns(curve, joint_set, columns, labelled)
  auc = {k: metrics.pck_curve_auc(thresholds, v) for k, v in curves.items()}
  return OfficialScores(
      convention=convention, joint_set=joint_set, threshold=float(threshold),
      per_joint=per_joint, counts=labelled,
      columns={k: float(v) for k, v in row.items()},
      thresholds=np.array(thresholds, dtype=np.float64), curves=curves,
      auc=auc, extras=dict(extras or {}), notes=tuple(notes))


# ------------------------------------------------------------------------ FLIC


def flic_backward_facing(gt, swap: str = FLIC_SWAP_MODEC) -> np.ndarray:
  """[N] bool: examples whose labels are person-centric and face backwards.

  Args:
    gt: [N, 11, 2] FLIC ground truth (joint_sets.FLIC order).
    swap: `FLIC_SWAP_MODEC` (every arm joint has l.x < r.x) or
      `FLIC_SWAP_ALL_PAIRS` (r_shoulder.x > l_shoulder.x).
  """
  gt = np.asarray(gt, dtype=np.float64)
  fs = joint_sets_lib.FLIC
  x = gt[..., 0]
  with np.errstate(invalid='ignore'):  # NaN compares False, as in Matlab
    if swap == FLIC_SWAP_MODEC:
      left = [fs.index(f'l_{b}') for b in ('shoulder', 'elbow', 'wrist')]
      right = [fs.index(f'r_{b}') for b in ('shoulder', 'elbow', 'wrist')]
      return np.all(x[:, left] < x[:, right], axis=1)
    if swap == FLIC_SWAP_ALL_PAIRS:
      return x[:, fs.index('r_shoulder')] > x[:, fs.index('l_shoulder')]
  raise ValueError(f'unknown FLIC swap rule {swap!r}; known: {FLIC_SWAPS}')


def flic_observer_centric(gt, visible, swap: str = FLIC_SWAP_MODEC
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Swaps left and right in the ground truth of backward-facing examples.

  Args:
    gt: [N, 11, 2] FLIC ground truth.
    visible: [N, 11] labelled joints (swapped along with the coordinates).
    swap: which rule and which joints, see the module docstring.

  Returns:
    (gt [N, 11, 2], visible [N, 11], backward [N] bool): new arrays.
  """
  gt = np.array(gt, dtype=np.float64)
  visible = np.array(visible, dtype=bool)
  fs = joint_sets_lib.FLIC
  backward = flic_backward_facing(gt, swap)
  perm = np.arange(fs.num_joints)
  if swap == FLIC_SWAP_MODEC:
    for base in ('shoulder', 'elbow', 'wrist'):
      left, right = fs.index(f'l_{base}'), fs.index(f'r_{base}')
      perm[left], perm[right] = right, left
  else:
    perm = fs.flip_permutation
  gt[backward] = gt[backward][:, perm]
  visible[backward] = visible[backward][:, perm]
  return gt, visible, backward


def _torso_norm(gt, visible, joint_set):
  """(norm [N], visible [N, J], note): `metrics.torso_size`, with the
  examples that have no usable torso left out (every joint marked
  unlabelled; norm 1 as a placeholder) and counted in the note."""
  norm = metrics.torso_size(gt, joint_set, visible)
  usable = np.isfinite(norm)
  note = (f'{int((~usable).sum())} of {len(usable)} examples left out: torso '
          'joints not both labelled')
  return (np.where(usable, norm, 1.0), np.asarray(visible, bool) &
          usable[:, None], note)


def flic_pck(pred, gt, visible, swap: str = FLIC_SWAP_MODEC,
             threshold: float = FLIC_THRESHOLD, thresholds=FLIC_THRESHOLDS,
             include_hip: bool = False) -> OfficialScores:
  """FLIC PCK as the dataset authors' script, table as paper Table 3.

  Args:
    pred: [N, 11, 2] predictions, observer-centric (never swapped).
    gt: [N, 11, 2] ground truth as labelled (person-centric); swapped here.
    visible: [N, 11] labelled ground-truth joints.
    swap: `FLIC_SWAP_MODEC` or `FLIC_SWAP_ALL_PAIRS`.
    threshold: the Table 3 threshold r.
    thresholds: [T] curve thresholds.
    include_hip: add a Hip column (the paper has none).
  """
  joint_set = joint_sets_lib.FLIC
  gt, visible, backward = flic_observer_centric(gt, visible, swap)
  norm, visible, torso_note = _torso_norm(gt, visible, joint_set)
  dist = _normalised_distances(pred, gt, visible, norm)
  columns = FLIC_COLUMNS + ((_FLIC_GROUPS['Hip'],) if include_hip else ())
  note = (f'{int(backward.sum())} of {len(backward)} backward-facing ground '
          f'truths swapped ({swap})')
  return _score(f'flic_{swap}', joint_set, dist, visible, thresholds,
                threshold, columns, notes=(note, torso_note))


def flic_predictions_observer_centric(pred, swap: str = FLIC_SWAP_MODEC
                                      ) -> tuple[np.ndarray, np.ndarray]:
  """Person-centric [N, 11, 2] predictions made observer-centric.

  Left and right are swapped where the predicted arms themselves face
  backwards, by the rule ``swap`` that the scorer applies to the ground
  truth (no ground truth is used). Returns (new predictions, swapped [N]).
  """
  pred = np.asarray(pred, dtype=np.float64)
  observer, _, swapped = flic_observer_centric(
      pred, np.ones(pred.shape[:2], bool), swap)
  return observer, swapped


def flic_pck_person_centric(pred, gt, visible, swap: str = FLIC_SWAP_MODEC,
                            **kwargs) -> OfficialScores:
  """`flic_pck` of a model trained on FLIC's raw person-centric labels.

  The official scorer expects observer-centric predictions: they are made
  so first (`flic_predictions_observer_centric`). ``kwargs`` go to
  `flic_pck`.
  """
  observer, swapped = flic_predictions_observer_centric(pred, swap)
  scores = flic_pck(observer, gt, visible, swap, **kwargs)
  note = (f'{int(swapped.sum())} of {len(swapped)} person-centric '
          f'predictions made observer-centric ({swap} rule on the '
          'predicted arms)')
  return dataclasses.replace(scores, notes=scores.notes + (note,))


# ------------------------------------------------------------------------ MPII


def mpii_head_sizes(head_boxes) -> np.ndarray:
  """[N, 2, 2] head boxes ((x1, y1), (x2, y2)) -> [N] 0.6 * diagonal."""
  head_boxes = np.asarray(head_boxes, dtype=np.float64)
  if head_boxes.ndim != 3 or head_boxes.shape[1:] != (2, 2):
    raise ValueError(f'head_boxes must have shape [N, 2, 2], got '
                     f'{head_boxes.shape}')
  return MPII_SC_BIAS * np.linalg.norm(head_boxes[:, 1] - head_boxes[:, 0],
                                       axis=-1)


def mpii_pckh(pred, gt, visible, head_boxes, convention: str = MPII_OFFICIAL,
              threshold: float = MPII_THRESHOLD, thresholds=None
              ) -> OfficialScores:
  """MPII PCKh under the official Matlab toolkit or the HRNet port.

  Args:
    pred: [N, 16, 2] predictions (MPII joint ids 0-15).
    gt: [N, 16, 2] ground truth, same frame.
    visible: [N, 16] not-missing ground truth (1 - jnt_missing).
    head_boxes: [N, 2, 2] head boxes in the same frame.
    convention: `MPII_OFFICIAL` or `MPII_HRNET` (module docstring).
    threshold: the headline r (Table 4: 0.5).
    thresholds: [T] curve; by default each convention's own range.
  """
  joint_set = joint_sets_lib.MPII
  dist = _normalised_distances(pred, gt, visible, mpii_head_sizes(head_boxes))
  if convention == MPII_OFFICIAL:
    thresholds = MPII_THRESHOLDS if thresholds is None else thresholds
    return _score('mpii_official', joint_set, dist, visible, thresholds,
                  threshold, MPII_OFFICIAL_COLUMNS)
  if convention == MPII_HRNET:
    thresholds = HRNET_THRESHOLDS if thresholds is None else thresholds
    correct, labelled = metrics.pck_counts_from_distances(
        dist, visible, [HRNET_MEAN_AT_01_THRESHOLD])
    at_01 = tables.combine_columns(_fractions(correct[0], labelled), joint_set,
                                   MPII_HRNET_COLUMNS[-1:], labelled)['Mean']
    return _score('mpii_hrnet', joint_set, dist, visible, thresholds,
                  threshold, MPII_HRNET_COLUMNS,
                  extras={'Mean@0.1': float(at_01)},
                  notes=('HRNet Mean@0.1 reads rng[11]: r = '
                         f'{HRNET_MEAN_AT_01_THRESHOLD:g}',))
  raise ValueError(f'unknown MPII convention {convention!r}; known: '
                   f'{MPII_CONVENTIONS}')


# ------------------------------------------------------------------------- LSP


def lsp_pck(pred, gt, visible=None, threshold: float = LSP_THRESHOLD,
            thresholds=LSP_THRESHOLDS) -> OfficialScores:
  """LSP PCK (person-centric) as Pishchulin's evaluatePCK.m.

  Args:
    pred: [N, 14, 2] predictions in LSP joint order.
    gt: [N, 14, 2] ground truth (test images 1001-2000).
    visible: [N, 14] joints to score; by default all (occluded ones too, as
      the official script).
    threshold: the headline r.
    thresholds: [T] curve thresholds.
  """
  joint_set = joint_sets_lib.LSP
  gt = np.asarray(gt, dtype=np.float64)
  if visible is None:
    visible = np.ones(gt.shape[:2], dtype=bool)
  norm, visible, torso_note = _torso_norm(gt, visible, joint_set)
  dist = _normalised_distances(pred, gt, visible, norm)
  return _score('lsp', joint_set, dist, visible, thresholds, threshold,
                LSP_COLUMNS, notes=(torso_note,))


# ----------------------------------------------------------------- file level


def score(dataset: str, pred, gt: prediction_files.GroundTruth,
          flic_swap: str = FLIC_SWAP_MODEC) -> list[OfficialScores]:
  """Every official convention of ``dataset`` for [N, J, 2] predictions."""
  if dataset != gt.dataset:
    raise ValueError(f'ground truth is {gt.dataset!r}, not {dataset!r}')
  if dataset == 'flic':
    scores = flic_pck(pred, gt.coords, gt.visible, swap=flic_swap)
    return [dataclasses.replace(scores, notes=scores.notes + (
        'predictions scored as given: observer-centric',))]
  if dataset == 'mpii':
    return [mpii_pckh(pred, gt.coords, gt.visible, gt.head_boxes, c)
            for c in MPII_CONVENTIONS]
  if dataset == 'lsp':
    return [lsp_pck(pred, gt.coords, gt.visible)]
  raise ValueError(f"unknown dataset {dataset!r}; expected 'flic', 'mpii' "
                   "or 'lsp'")


ROW_LABELS = {'mpii_official': 'MPII official (Matlab)',
              'mpii_hrnet': 'HRNet python port'}


def format_report(scores: list[OfficialScores], title: str = '') -> str:
  """Text table (one row per convention) with AUCs, extras and notes."""
  rows = {}
  for s in scores:
    rows[ROW_LABELS.get(s.convention, s.convention)] = dict(
        s.columns, **s.extras)
  metric = 'PCKh' if scores[0].joint_set.name == 'mpii' else 'PCK'
  lines = [tables.format_table(
      rows, title=f'{title}{metric} @ {scores[0].threshold:g}'.strip())]
  for s in scores:
    aucs = ', '.join(f'{k} {100 * v:.1f}' for k, v in s.auc.items())
    lines.append(f'{ROW_LABELS.get(s.convention, s.convention)}: AUC over r '
                 f'in [{s.thresholds[0]:g}, {s.thresholds[-1]:g}]: {aucs}')
    lines += [f'  note: {n}' for n in s.notes]
  return '\n'.join(lines)


def default_output_path(predictions_path: str) -> str:
  """Where the JSON goes by default: next to the predictions."""
  return os.path.splitext(predictions_path)[0] + '.scores.json'


def evaluate_prediction_files(dataset: str, ground_truth_path: str,
                              predictions_path: str,
                              predictions_key: str | None = None,
                              predictions_layout: str | None = None,
                              flic_swap: str = FLIC_SWAP_MODEC,
                              index_base: int | None = None
                              ) -> tuple[str, dict]:
  """Scores a predictions file against a ground-truth file.

  ``index_base`` (0 or 1) is the predictions' pixel convention when the file
  does not declare it (`prediction_files.load_predictions`).

  Returns:
    (printable report, JSON-ready dict with every convention's scores).
  """
  gt = prediction_files.load_ground_truth(ground_truth_path, dataset)
  pred = prediction_files.load_predictions(predictions_path, gt,
                                           predictions_key, predictions_layout,
                                           index_base)
  scores = score(dataset, pred, gt, flic_swap)
  header = (f'{dataset.upper()}: {gt.num_examples} examples\n'
            f'  ground truth: {gt.source}\n  predictions: {predictions_path}\n')
  report = header + format_report(scores)
  data = {
      'dataset': dataset,
      'ground_truth': os.path.abspath(ground_truth_path),
      'predictions': os.path.abspath(predictions_path),
      'num_examples': gt.num_examples,
      'scores': {s.convention: s.to_json_dict() for s in scores},
  }
  return report, data
