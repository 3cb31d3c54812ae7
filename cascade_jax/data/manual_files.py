"""Reading the manually downloaded files of the real datasets (FLIC, MPII, LSP).

Matlab .mat annotations and JPEG images, with errors that name the file and
what was expected. .mat files load with `scipy.io.loadmat(struct_as_record=
False, squeeze_me=True)`: a 1x1 struct array becomes a `mat_struct`, a 1xN one
an array of them, an empty field an empty array; `as_list` and `is_empty`
absorb these ragged shapes.

Images: `read_rgb_image` decodes each one in full and defines the 8-bit RGB
reading of the other modes; a builder's `bad_images` option ('error', the
default, or 'skip') says whether an unreadable image stops the build or its
example is left out and listed (`generate`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
import io
import os

from absl import logging
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


# The version history of the FLIC, MPII and LSP builders, which change
# together (this module reads their files).
BUILDER_VERSION = '1.1.0'
BUILDER_RELEASE_NOTES = {
    '1.0.0': 'Initial release.',
    '1.1.0': 'Images decoded in full at build time (a truncated file fails '
             'the build), 16-bit ones by their high byte; the bad_images '
             'option and metadata.json skipped_images.',
}

BAD_IMAGE_POLICIES = ('error', 'skip')
# PIL modes of 16-bit grayscale files (PNG opens as 'I;16'; some readers give
# 'I'): reduced to 8 bits by their high byte, as OpenCV's imread does.
_SIXTEEN_BIT_MODES = ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I')


class ImageError(ManualFileError):
  """An image file is missing, empty, corrupt, truncated or of a mode that has
  no RGB reading. Attributes: path, the file."""

  def __init__(self, path: str, message: str):
    super().__init__(message)
    self.path = path


def read_rgb_image(path: os.PathLike | str, what: str) -> bytes:
  """The encoded bytes of an image that decodes to uint8 [H, W, 3].

  Every image is decoded in full, so that a truncated or corrupt file fails
  here (ImageError naming it) rather than in training. JPEGs in RGB or
  grayscale are returned as they are (TFDS repeats a gray channel); other
  files are converted to 8-bit RGB and re-encoded as JPEG (quality 95, full
  chroma resolution):
  16-bit samples keep their high byte (v >> 8, OpenCV's reading; 16-bit RGB
  PNGs are read so by PIL already), alpha is dropped (RGBA, LA, PA: the colour
  as stored, as OpenCV's imread), palette images take their palette colours,
  gray is repeated, CMYK and YCbCr go through PIL's conversion. 32-bit float
  images (mode 'F') have no defined reading and raise ImageError.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ImageError(path, f'missing file {path}: expected {what}')
  with open(path, 'rb') as f:
    data = f.read()
  if not data:
    raise ImageError(path, f'empty file {path} (0 bytes): expected {what}')
  try:
    with Image.open(io.BytesIO(data)) as image:
      image.load()
      if image.format == 'JPEG' and image.mode in ('RGB', 'L'):
        return data
      rgb = _to_rgb(image)
  except Exception as error:  # PIL raises many types on a corrupt file.
    raise ImageError(path, f'cannot read {path} as an image ({what}): '
                     f'{error}') from error
  if rgb is None:
    raise ImageError(path, f'{path}: image mode {image.mode!r} has no defined '
                     f'RGB reading ({what}); expected 8 or 16-bit gray, RGB, '
                     'RGBA, palette or CMYK')
  buffer = io.BytesIO()
  rgb.save(buffer, format='JPEG', quality=95, subsampling=0)
  return buffer.getvalue()


def _to_rgb(image: Image.Image) -> Image.Image | None:
  """``image`` as 8-bit RGB (see read_rgb_image), None for mode 'F'."""
  if image.mode in _SIXTEEN_BIT_MODES:
    gray = np.clip(np.asarray(image, np.int64) >> 8, 0, 255).astype(np.uint8)
    return Image.fromarray(gray).convert('RGB')
  if image.mode == 'F':
    return None
  return image.convert('RGB')


def check_bad_images(policy: str) -> str:
  """``policy`` if it is one of BAD_IMAGE_POLICIES; raises otherwise."""
  if policy not in BAD_IMAGE_POLICIES:
    raise ValueError(f'bad_images={policy!r}: expected one of '
                     f'{BAD_IMAGE_POLICIES}')
  return policy


def generate(split: str, makers: Iterable[tuple[int, Callable[[], dict]]],
             bad_images: str, metadata: dict) -> Iterator[tuple[int, dict]]:
  """A builder's ``_generate_examples``: (key, make()) for each (key, make).

  With ``bad_images`` 'error' an ImageError stops the build; with 'skip' the
  example is left out (TFDS counts the split from what is yielded) and its
  file and error are appended to ``metadata['skipped_images'][split]``,
  which the builder's DatasetInfo writes to metadata.json beside the data,
  and logged when the split is complete. Both policies record the list, so
  an empty one shows that nothing was skipped. A split left with no example
  raises (TFDS cannot write an empty split).
  """
  skipped = metadata.setdefault('skipped_images', {}).setdefault(split, [])
  skipped.clear()  # A build that failed part-way may have filled it.
  yielded = False
  for key, make in makers:
    try:
      record = make()
    except ImageError as error:
      if bad_images == 'error':
        raise
      skipped.append({'file': error.path, 'error': str(error)})
      continue
    yield key, record
    yielded = True
  if skipped and not yielded:
    raise ManualFileError(
        f'every example of the {split} split has an unreadable image '
        f'({len(skipped)}, e.g. {skipped[0]["error"]}): is the manual '
        'folder complete?')
  if skipped:
    logging.warning('%s split: skipped %d examples whose image could not be '
                    'read (bad_images=skip): %s', split, len(skipped),
                    ', '.join(sorted({s['file'] for s in skipped})))
