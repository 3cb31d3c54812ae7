"""Reading the manually downloaded files of the real datasets (FLIC, MPII, LSP).

Matlab .mat annotations and JPEG images, with errors that name the file and
what was expected. .mat files load with `scipy.io.loadmat(struct_as_record=
False, squeeze_me=True)`: a 1x1 struct array becomes a `mat_struct`, a 1xN one
an array of them, an empty field an empty array; `as_list` and `is_empty`
absorb these ragged shapes.
"""

from __future__ import annotations

import io
import os

import numpy as np
import scipy.io
from PIL import Image


class ManualFileError(ValueError):
  """A manually downloaded file is missing, unreadable or of the wrong structure."""


def require_file(path: os.PathLike | str, what: str) -> str:
  """``path`` as a string; raises naming it and ``what`` it should hold."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ManualFileError(f'missing file {path}: expected {what}')
  return path


def load_mat(path: os.PathLike | str, variables: tuple[str, ...],
             what: str) -> dict:
  """Loads the Matlab ``variables`` of the .mat file at ``path``.

  Returns:
    {name: value} for each of ``variables``, structs as `mat_struct`.
  """
  path = require_file(path, what)
  try:
    contents = scipy.io.loadmat(path, struct_as_record=False, squeeze_me=True,
                                variable_names=variables)
  except Exception as error:  # scipy raises many types on a corrupt file.
    raise ManualFileError(f'cannot read {path} as a Matlab .mat file '
                          f'({what}): {error}') from error
  missing = [name for name in variables if name not in contents]
  if missing:
    raise ManualFileError(f'{path}: expected {what} with the variable(s) '
                          f'{list(variables)}; missing {missing}')
  return {name: contents[name] for name in variables}


def field(struct, name: str, path: str, where: str):
  """``struct.name``; raises naming the file, the place and the field."""
  if not isinstance(struct, scipy.io.matlab.mat_struct):
    raise ManualFileError(f'{path}: {where} should be a struct with field '
                          f'{name!r}, got {type(struct).__name__}')
  if name not in struct._fieldnames:
    raise ManualFileError(f'{path}: {where} has no field {name!r}; fields: '
                          f'{struct._fieldnames}')
  return getattr(struct, name)


def has_field(struct, name: str) -> bool:
  return (isinstance(struct, scipy.io.matlab.mat_struct)
          and name in struct._fieldnames)


def optional_field(struct, name: str):
  """``struct.name``, or an empty array (Matlab's []) when it has no such field."""
  return getattr(struct, name) if has_field(struct, name) else np.zeros(0)


def is_empty(value) -> bool:
  """True for Matlab's [] and '' (a missing or cleared field)."""
  return isinstance(value, (np.ndarray, str)) and np.size(value) == 0


def as_list(value) -> list:
  """A struct array as a list: a lone struct, an array or [] alike."""
  if is_empty(value):
    return []
  if isinstance(value, np.ndarray):
    return list(value.ravel())
  return [value]


def scalar(value, path: str, where: str) -> float:
  """A Matlab number (or a numeric string such as '1') as a float."""
  try:
    return float(np.asarray(value, dtype=np.float64).reshape(()))
  except (TypeError, ValueError):
    raise ManualFileError(f'{path}: {where} should be a number, got '
                          f'{value!r}') from None


def read_rgb_image(path: os.PathLike | str, what: str) -> bytes:
  """The encoded bytes of an image that decodes to uint8 [H, W, 3].

  JPEGs in RGB or grayscale are returned as they are (TFDS repeats a gray
  channel); any other mode (CMYK, palette, alpha, 16 bit) or format is
  converted to RGB and re-encoded as JPEG (quality 95), so that TFDS's decoder
  never returns 1, 2 or 4 channels.
  """
  path = require_file(path, what)
  with open(path, 'rb') as f:
    data = f.read()
  try:
    with Image.open(io.BytesIO(data)) as image:
      if image.format == 'JPEG' and image.mode in ('RGB', 'L'):
        return data
      image = image.convert('RGB')
  except Exception as error:  # PIL raises many types on a corrupt file.
    raise ManualFileError(f'cannot read {path} as an image ({what}): '
                          f'{error}') from error
  buffer = io.BytesIO()
  image.save(buffer, format='JPEG', quality=95)
  return buffer.getvalue()
