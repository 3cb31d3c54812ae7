"""Reading and writing ground-truth and prediction files in the datasets' formats.

Ground truth (`load_ground_truth`):
  - FLIC ``examples.mat``: its 1016 ``istest`` examples, the 11 labelled
    ``coords`` columns (1-based 1-7, 10, 13, 14, 17 = `joint_sets.FLIC` order).
  - LSP ``joints.mat``: 3 x 14 x 2000, test images 1001-2000 (person-centric).
    Row 3 (1 = occluded) is kept in ``occluded``; every joint is labelled.
  - gt_valid.mat-style files (MPII's evaluation layout, any dataset):
    ``pos_gt_src`` J x 2 x N, ``jnt_missing`` J x N (1 = missing),
    ``headboxes_src`` 2 x 2 x N (corner, xy, person), 1-based.
  - MPII's own annotations, whose coordinates gt_valid.mat copies with 13
    labelled joints zeroed: the RELEASE file mpii_human_pose_v1_u12_1.mat
    (its validation persons, valid_split.json) or valid_annolist.mat.

Predictions (`load_predictions`): .mat, .npy, .json or .h5 holding one array in
the dataset's joint order, laid out N x J x 2 (or N x J x 3 with a score),
J x 2 x N or 2 x J x N; J and N come from the ground truth and decide the layout.

Coordinates: every ground truth is brought to 0-based pixels (DESIGN section
5; all these annotation files are Matlab, 1-based). A prediction file's index
base is explicit: the files this module writes declare it (variable or key
``index_base``, 0 or 1), and for any other file the caller names it
(`load_predictions`' ``index_base``, launch.evaluate_predictions'
--index_base); a 1-based file is shifted by -1, a 0-based one is not.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import scipy.io

from cascade_jax import joint_sets as joint_sets_lib

# FLIC examples.mat: 0-based indices of the 11 labelled columns of coords.
FLIC_COORD_COLUMNS = (0, 1, 2, 3, 4, 5, 6, 9, 12, 13, 16)
LSP_TEST = slice(1000, 2000)  # images 1001-2000
H5PY_PIN = 'h5py==3.16.0'

# Layout name -> axes order of the stored array, as letters of 'NJC'
# (C = the coordinate axis, 2 or 3 long).
LAYOUTS = {'NJ2': 'NJC', 'J2N': 'JCN', '2JN': 'CJN'}

INDEX_BASE_KEY = 'index_base'
INDEX_BASES = (0, 1)

# Variable and layout the public toolkits read: MPII's pos_pred_src (the
# HRNet port / gt_valid.mat convention), LSP's and FLIC's `pred` 2 x J x N
# (Pishchulin's evaluatePCK, MODEC's pred_coords layout). All written
# 1-based, the pixel convention of the original Matlab annotation files.
_OFFICIAL_PREDICTIONS = {
    'mpii': ('pos_pred_src', 'J2N'),
    'lsp': ('pred', '2JN'),
    'flic': ('pred', '2JN'),
}


@dataclasses.dataclass(frozen=True)
class GroundTruth:
  """Ground truth of one test split.

  Attributes:
    dataset: 'flic', 'mpii' or 'lsp'.
    coords: [N, J, 2] float64 (x, y), 0-based.
    visible: [N, J] bool, the labelled joints (FLIC: not NaN; LSP: all).
    head_boxes: [N, 2, 2] float64 (corner, xy) head boxes, 0-based, or None.
    occluded: [N, J] bool LSP occlusion flags, or None.
    source: what was read (file and variables), for reports.
  """
  dataset: str
  coords: np.ndarray
  visible: np.ndarray
  head_boxes: np.ndarray | None = None
  occluded: np.ndarray | None = None
  source: str = ''

  @property
  def num_examples(self) -> int:
    return self.coords.shape[0]

  @property
  def num_joints(self) -> int:
    return self.coords.shape[1]


def _mat_variables(path: str) -> list[tuple[str, tuple, str]]:
  try:
    return scipy.io.whosmat(path)
  except Exception as e:  # scipy raises several types for a bad file
    raise ValueError(f'{path}: not a readable MATLAB .mat file ({e}); v7.3 '
                     '(HDF5) .mat files are not supported, save with -v7') from e


def load_ground_truth(path: str, dataset: str) -> GroundTruth:
  """Reads the ground truth of ``dataset``'s test split from ``path``.

  Args:
    path: FLIC examples.mat, LSP joints.mat, or a gt_valid.mat-style file.
    dataset: 'flic', 'mpii' or 'lsp'.

  Returns:
    The `GroundTruth`; for MPII it has head boxes.
  """
  joint_set = joint_sets_lib.get(dataset)
  if not os.path.exists(path):
    raise FileNotFoundError(f'ground truth file {path!r} does not exist')
  names = {name for name, _, _ in _mat_variables(path)}
  if 'pos_gt_src' in names:
    gt = _load_gt_valid_style(path, dataset)
  elif dataset == 'mpii' and names & {'RELEASE', 'annolist'}:
    gt = _load_mpii_annotations(path)
  elif dataset == 'flic' and 'examples' in names:
    gt = _load_flic_examples(path)
  elif dataset == 'lsp' and 'joints' in names:
    gt = _load_lsp_joints(path)
  else:
    expected = {'flic': "FLIC examples.mat ('examples')",
                'lsp': "LSP joints.mat ('joints', 3x14x2000)",
                'mpii': "MPII's RELEASE file, valid_annolist.mat "
                        "('annolist') or a gt_valid.mat-style file "
                        "('pos_gt_src', 'headboxes_src', 'jnt_missing')"
               }[dataset]
    raise ValueError(f'{path}: variables {sorted(names)} are not {expected} '
                     "nor a gt_valid.mat-style file ('pos_gt_src', "
                     "'jnt_missing')")
  if gt.num_joints != joint_set.num_joints:
    raise ValueError(f'{path}: ground truth has {gt.num_joints} joints but '
                     f'{dataset} has {joint_set.num_joints} '
                     f'({", ".join(joint_set.joints)})')
  if dataset == 'mpii' and gt.head_boxes is None:
    raise ValueError(f'{path}: MPII PCKh needs head boxes: variable '
                     "'headboxes_src' (2x2xN) is missing")
  return gt


def _load_gt_valid_style(path: str, dataset: str) -> GroundTruth:
  mat = scipy.io.loadmat(path)
  pos = np.asarray(mat['pos_gt_src'], dtype=np.float64)
  if pos.ndim != 3 or pos.shape[1] != 2:
    raise ValueError(f"{path}: 'pos_gt_src' must be J x 2 x N, got {pos.shape}")
  num_joints, _, num = pos.shape
  if 'jnt_missing' in mat:
    missing = np.asarray(mat['jnt_missing'])
    if missing.shape != (num_joints, num):
      raise ValueError(f"{path}: 'jnt_missing' must be J x N = "
                       f"{(num_joints, num)} like pos_gt_src, got "
                       f'{missing.shape}')
    visible = ~missing.astype(bool).T
  else:
    visible = np.all(np.isfinite(pos), axis=1).T
  head_boxes = None
  if 'headboxes_src' in mat:
    boxes = np.asarray(mat['headboxes_src'], dtype=np.float64)
    if boxes.shape != (2, 2, num):
      raise ValueError(f"{path}: 'headboxes_src' must be 2 x 2 x N = "
                       f'{(2, 2, num)}, got {boxes.shape}')
    head_boxes = boxes.transpose(2, 0, 1) - 1.0
  coords = pos.transpose(2, 0, 1) - 1.0
  return GroundTruth(dataset=dataset, coords=coords, visible=visible,
                     head_boxes=head_boxes,
                     source=f'{path} (pos_gt_src, 1-based)')


def _load_mpii_annotations(path: str) -> GroundTruth:
  """The validation persons from MPII's own annotation structure."""
  # Imported here: the MPII parser brings TFDS in.
  from cascade_jax.data.mpii import mpii  # pylint: disable=g-import-not-at-top
  persons = mpii.read_validation_persons(path)
  return GroundTruth(
      dataset='mpii',
      coords=np.stack([p.joints for p in persons]).astype(np.float64),
      visible=np.stack([p.visible for p in persons]),
      head_boxes=np.stack([p.head_box.reshape(2, 2) for p in persons]
                          ).astype(np.float64),
      source=f'{path} (annolist, 1-based)')


def _load_flic_examples(path: str) -> GroundTruth:
  mat = scipy.io.loadmat(path, struct_as_record=False, squeeze_me=True)
  examples = np.atleast_1d(mat['examples'])
  try:
    istest = np.array([bool(e.istest) for e in examples])
    coords = np.stack([np.asarray(e.coords, dtype=np.float64)
                       for e in examples])
  except AttributeError as e:
    raise ValueError(f"{path}: 'examples' lacks a field FLIC has ({e}); "
                     'expected istest and coords (2x29)') from e
  if coords.shape[1:] != (2, 29):
    raise ValueError(f'{path}: examples(i).coords must be 2x29, '
                     f'got {coords.shape[1:]}')
  coords = coords[istest][:, :, FLIC_COORD_COLUMNS].transpose(0, 2, 1) - 1.0
  return GroundTruth(dataset='flic', coords=coords,
                     visible=np.all(np.isfinite(coords), axis=-1),
                     source=f'{path} (examples, {istest.sum()} istest, '
                     '1-based)')


def _load_lsp_joints(path: str) -> GroundTruth:
  joints = np.asarray(scipy.io.loadmat(path)['joints'], dtype=np.float64)
  if joints.shape != (3, 14, 2000):
    raise ValueError(f"{path}: 'joints' must be the original LSP 3 x 14 x "
                     f'2000, got {joints.shape}')
  test = joints[:, :, LSP_TEST]
  return GroundTruth(dataset='lsp', coords=test[:2].transpose(2, 1, 0) - 1.0,
                     visible=np.ones(test.shape[2:0:-1], dtype=bool),
                     occluded=test[2].T.astype(bool),
                     source=f'{path} (joints, images 1001-2000, 1-based)')


def save_ground_truth_mat(path: str, gt: GroundTruth) -> None:
  """Writes ``gt`` as a 1-based gt_valid.mat-style file (public toolkits)."""
  mdict = {'pos_gt_src': gt.coords.transpose(1, 2, 0) + 1.0,
           'jnt_missing': (~gt.visible).T.astype(np.uint8)}
  if gt.head_boxes is not None:
    mdict['headboxes_src'] = gt.head_boxes.transpose(1, 2, 0) + 1.0
  # Missing joints are stored as (0, 0) like MPII's own gt_valid.mat.
  mdict['pos_gt_src'] = np.where(gt.visible.T[:, None, :],
                                 mdict['pos_gt_src'], 0.0)
  scipy.io.savemat(path, mdict, do_compression=True)


# ----------------------------------------------------------------- predictions


def arrange_predictions(array, num_examples: int, num_joints: int,
                        layout: str | None = None, name: str = 'predictions'
                        ) -> np.ndarray:
  """Brings a stored prediction array to [N, J, 2].

  Args:
    array: N x J x 2 (or x 3: the third value, a score, is dropped),
      J x 2 x N or 2 x J x N.
    num_examples: N, from the ground truth.
    num_joints: J, from the ground truth.
    layout: one of `LAYOUTS` to skip detection ('NJ2', 'J2N', '2JN').
    name: names the array (file and variable) in errors.

  Returns:
    [N, J, 2] float64, a new array.
  """
  array = np.asarray(array, dtype=np.float64)
  if layout is not None and layout not in LAYOUTS:
    raise ValueError(f'unknown layout {layout!r}; known: {sorted(LAYOUTS)}')
  candidates = []
  for key, axes in LAYOUTS.items():
    if layout is not None and key != layout:
      continue
    if array.ndim != 3:
      continue
    shape = dict(zip(axes, array.shape))
    coords_ok = shape['C'] == 2 or (key == 'NJ2' and shape['C'] == 3)
    if shape['N'] == num_examples and shape['J'] == num_joints and coords_ok:
      candidates.append(key)
  expected = (f'{num_examples} x {num_joints} x 2 (N x J x 2, or x 3 with a '
              f'score), {num_joints} x 2 x {num_examples} (J x 2 x N) or '
              f'2 x {num_joints} x {num_examples} (2 x J x N)')
  if not candidates:
    raise ValueError(f'{name} has shape {array.shape}; expected '
                     f'{expected} for {num_examples} ground-truth examples of '
                     f'{num_joints} joints' +
                     (f' in layout {layout}' if layout else ''))
  if len(candidates) > 1:
    raise ValueError(f'{name} has shape {array.shape}, which fits layouts '
                     f'{candidates}; name one (--predictions_layout)')
  axes = LAYOUTS[candidates[0]]
  out = np.transpose(array, [axes.index(a) for a in 'NJC'])
  return np.array(out[..., :2])


def _choose(names: list[str], key: str | None, path: str) -> str:
  if key is not None:
    if key not in names:
      raise KeyError(f'{path}: no variable {key!r}; it holds {sorted(names)}')
    return key
  if len(names) != 1:
    raise ValueError(f'{path}: holds {len(names)} candidate variables '
                     f'{sorted(names)}; name one (--predictions_key)')
  return names[0]


def _read_array(path: str, key: str | None
                ) -> tuple[np.ndarray, str, int | None]:
  """The prediction array stored in ``path``, a name for errors, and the
  index base the file declares (None when it declares none)."""
  ext = os.path.splitext(path)[1].lower()
  if ext == '.mat':
    mat = scipy.io.loadmat(path)
    names = [k for k, v in mat.items() if not k.startswith('__') and
             isinstance(v, np.ndarray) and v.dtype.kind in 'fiu' and
             v.ndim == 3]
    if key is not None:
      names = [k for k in mat if not k.startswith('__')]
    name = _choose(names, key, path)
    return mat[name], f'{path}:{name}', _declared(mat, path)
  if ext == '.npy':
    return np.load(path, allow_pickle=False), path, None
  if ext == '.json':
    with open(path) as f:
      data = json.load(f)
    if isinstance(data, dict):
      name = _choose([k for k in data if k != INDEX_BASE_KEY], key, path)
      return (np.asarray(data[name], dtype=np.float64), f'{path}:{name}',
              _declared(data, path))
    return np.asarray(data, dtype=np.float64), path, None
  if ext in ('.h5', '.hdf5'):
    try:
      import h5py  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise ImportError(f'{path}: reading .h5 predictions needs h5py '
                        f'(tested: pip install {H5PY_PIN})') from None
    with h5py.File(path, 'r') as f:
      names = [k for k, v in f.items() if isinstance(v, h5py.Dataset)]
      name = _choose(names, key, path)
      return (np.asarray(f[name][()], dtype=np.float64), f'{path}:{name}',
              _declared(dict(f.attrs), path))
  raise ValueError(f'{path}: unsupported prediction file type {ext!r}; '
                   'expected .mat, .npy, .json or .h5')


def _declared(contents, path: str) -> int | None:
  """The ``index_base`` that a file's variables / keys / attributes declare."""
  if INDEX_BASE_KEY not in contents:
    return None
  value = np.asarray(contents[INDEX_BASE_KEY]).ravel()
  if value.size != 1 or value[0] not in INDEX_BASES:
    raise ValueError(f'{path}: {INDEX_BASE_KEY} must be 0 or 1, got '
                     f'{value.tolist()}')
  return int(value[0])


def load_predictions(path: str, gt: GroundTruth, key: str | None = None,
                     layout: str | None = None, index_base: int | None = None
                     ) -> np.ndarray:
  """Reads predictions for ``gt`` from ``path``, 0-based like ``gt``.

  Args:
    path: .mat / .npy / .json / .h5 file with one array in the dataset's
      joint order (see module docstring for layouts).
    gt: the ground truth they are scored against; gives N and J.
    key: the variable (.mat, .h5) or key (.json object) to read; by default
      the only candidate one.
    layout: force one of `LAYOUTS` when the shape is ambiguous.
    index_base: 0 or 1, the file's pixel convention; needed when the file
      does not declare it (``index_base`` variable / key / .h5 attribute),
      and must agree with it when it does.

  Returns:
    [N, J, 2] float64 predictions, shifted by -1 if the file is 1-based;
    NaN stays NaN (scored as a miss).
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f'predictions file {path!r} does not exist')
  if index_base is not None and index_base not in INDEX_BASES:
    raise ValueError(f'index_base must be 0 or 1, got {index_base!r}')
  array, name, declared = _read_array(path, key)
  if declared is None and index_base is None:
    raise ValueError(
        f'{path} does not declare whether its pixel coordinates are 0-based '
        f'(Python, C) or 1-based (Matlab, e.g. pos_pred_src) in an '
        f'{INDEX_BASE_KEY!r} variable: name it (--index_base=0 or 1)')
  if None not in (declared, index_base) and declared != index_base:
    raise ValueError(f'{path} declares {INDEX_BASE_KEY} = {declared}, but '
                     f'{index_base} was given')
  pred = arrange_predictions(array, gt.num_examples, gt.num_joints, layout,
                             name)
  return pred - (index_base if declared is None else declared)


def save_predictions(path: str, pred) -> None:
  """Writes 0-based [N, J, 2] predictions as N x J x 2 in a .json or .mat
  file (``preds``), declaring ``index_base`` = 0.

  Use `save_official_predictions` for the toolkits' own 1-based layout.
  """
  pred = np.asarray(pred, dtype=np.float64)
  if pred.ndim != 3 or pred.shape[-1] != 2:
    raise ValueError(f'pred must have shape [N, J, 2], got {pred.shape}')
  ext = os.path.splitext(path)[1].lower()
  if ext == '.json':
    with open(path, 'w') as f:
      json.dump({'preds': np.where(np.isnan(pred), None, pred).tolist(),
                 INDEX_BASE_KEY: 0}, f)
  elif ext == '.mat':
    scipy.io.savemat(path, {'preds': pred, INDEX_BASE_KEY: 0})
  else:
    raise ValueError(f'{path}: unsupported type {ext!r}; expected .json or '
                     '.mat (a .npy file cannot declare its index base)')


def save_official_predictions(path: str, pred, dataset: str) -> str:
  """Writes 0-based [N, J, 2] predictions in the layout public toolkits read.

  MPII: ``pos_pred_src`` 16 x 2 x N; LSP and FLIC: ``pred`` 2 x J x N. All
  1-based, the convention of the original annotation files, and declared so
  (``index_base`` = 1).

  Returns:
    The name of the variable written.
  """
  joint_set = joint_sets_lib.get(dataset)
  pred = np.asarray(pred, dtype=np.float64)
  if pred.ndim != 3 or pred.shape[1:] != (joint_set.num_joints, 2):
    raise ValueError(f'pred must have shape [N, {joint_set.num_joints}, 2] '
                     f'for {dataset}, got {pred.shape}')
  if os.path.splitext(path)[1].lower() != '.mat':
    raise ValueError(f'{path}: official prediction files are .mat')
  variable, layout = _OFFICIAL_PREDICTIONS[dataset]
  axes = LAYOUTS[layout]
  stored = np.transpose(pred + 1.0, ['NJC'.index(a) for a in axes])
  scipy.io.savemat(path, {variable: stored, INDEX_BASE_KEY: 1})
  return variable
