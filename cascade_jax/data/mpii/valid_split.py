"""The standard MPII validation split (Tompson et al.): 2958 persons.

Another split (for other files in the release's format, e.g. the synthetic
export) is read by `load_other` from a .mat in valid_annolist.mat's layout.

Shipped as valid_split.json beside this module, derived from the split's
valid_annolist.mat (its RELEASE_img_index and RELEASE_person_index, 1-based
indices into mpii_human_pose_v1_u12_1.mat). Regenerate it with
  python -c 'from cascade_jax.data.mpii import valid_split;
             valid_split.write("/path/to/valid_annolist.mat")'
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from cascade_jax.data import manual_files

SPLIT_FILE = pathlib.Path(__file__).with_name('valid_split.json')
NUM_PERSONS = 2958
_INDEX_FIELDS = ('RELEASE_img_index', 'RELEASE_person_index')


def read_valid_annolist(path: os.PathLike | str) -> np.ndarray:
  """[N, 2] int: the 1-based (RELEASE_img_index, RELEASE_person_index) pairs."""
  path = os.fspath(path)
  contents = manual_files.load_mat(
      path, _INDEX_FIELDS, 'the MPII validation valid_annolist.mat')
  columns = [np.asarray(contents[name]).ravel() for name in _INDEX_FIELDS]
  if columns[0].shape != columns[1].shape or columns[0].size == 0:
    raise manual_files.ManualFileError(
        f'{path}: {_INDEX_FIELDS} should be two non-empty vectors of equal '
        f'length, got {columns[0].shape} and {columns[1].shape}')
  return np.stack(columns, axis=1).astype(np.int64)


def write(valid_annolist: os.PathLike | str,
          out: os.PathLike | str = SPLIT_FILE) -> None:
  """Writes the split file ``out`` from ``valid_annolist`` (valid_annolist.mat)."""
  pairs = read_valid_annolist(valid_annolist)
  with open(out, 'w') as f:
    json.dump({
        'description': 'MPII validation split of Tompson et al.: 1-based '
                       'indices into mpii_human_pose_v1_u12_1.mat',
        'source': 'valid_annolist.mat',
        _INDEX_FIELDS[0]: pairs[:, 0].tolist(),
        _INDEX_FIELDS[1]: pairs[:, 1].tolist(),
    }, f)


def load_other(path: os.PathLike | str) -> np.ndarray:
  """[N, 2] int: the 0-based (image, person) pairs of a validation split other
  than the standard one, from a .mat in valid_annolist.mat's layout
  (RELEASE_img_index, RELEASE_person_index, 1-based), in the file's order:
  `data.valid_split_file`, e.g. the one `launch.export_synthetic` writes."""
  path = os.fspath(path)
  if not path.endswith('.mat'):
    raise manual_files.ManualFileError(
        f'data.valid_split_file={path}: expected a .mat with '
        f'{_INDEX_FIELDS} (1-based), as valid_annolist.mat')
  pairs = read_valid_annolist(path)
  if pairs.min() < 1:
    raise manual_files.ManualFileError(
        f'{path}: {_INDEX_FIELDS} are 1-based (Matlab), got the minimum '
        f'{pairs.min()}')
  return pairs - 1


def load(path: os.PathLike | str = SPLIT_FILE) -> np.ndarray:
  """[2958, 2] int: the 0-based (image, person) pairs, in the split's order."""
  path = os.fspath(path)
  try:
    with open(path) as f:
      contents = json.load(f)
    pairs = np.stack([np.asarray(contents[name], np.int64)
                      for name in _INDEX_FIELDS], axis=1)
  except (OSError, ValueError, KeyError) as error:
    raise manual_files.ManualFileError(
        f'cannot read the MPII validation split {path}: expected JSON with '
        f'the lists {_INDEX_FIELDS} ({error})') from error
  if pairs.shape != (NUM_PERSONS, 2) or pairs.min() < 1:
    raise manual_files.ManualFileError(
        f'{path}: expected {NUM_PERSONS} 1-based index pairs, got '
        f'{pairs.shape} with minimum {pairs.min()}')
  return pairs - 1
