"""Images of a manual folder: the 8-bit RGB reading of every mode, and the
bad_images policy ('error' names the file, 'skip' leaves the example out and
lists it) in the FLIC, MPII and LSP builders."""

import io
import re
import struct
import zlib

import ml_collections
import numpy as np
import pytest
from PIL import Image

from cascade_jax.data import datasets
from cascade_jax.data import manual_files
from cascade_jax.data.flic import flic
from cascade_jax.data.lsp import lsp
from cascade_jax.data.mpii import mpii
from cascade_jax.data.mpii import valid_split
from tests.data import fixtures

# Flat 8x8 blocks (JPEG's block size), so that the re-encoded JPEG keeps them
# within a grey level or two.
BLOCKS = np.kron(np.array([[10, 200], [90, 250]]), np.ones((8, 8))).astype(int)


def _decode(data: bytes) -> np.ndarray:
  return np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))


def _save(tmp_path, image: Image.Image, name: str) -> str:
  path = tmp_path / name
  image.save(path)
  return str(path)


def _png16_rgb(pixels: np.ndarray) -> bytes:
  """A 16-bit-per-channel RGB PNG of uint16 ``pixels`` [H, W, 3] (PIL cannot
  write one)."""
  height, width, _ = pixels.shape
  rows = b''.join(b'\0' + row.astype('>u2').tobytes() for row in pixels)

  def chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data
            + struct.pack('>I', zlib.crc32(kind + data)))

  header = struct.pack('>IIBBBBB', width, height, 16, 2, 0, 0, 0)
  return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header)
          + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


def _gray_rgb(gray: np.ndarray) -> np.ndarray:
  return np.repeat(gray[..., None], 3, axis=-1)


def test_gray_and_rgb_jpegs_are_kept_as_they_are(tmp_path):
  path = tmp_path / 'a.jpg'
  fixtures.write_jpeg(path, mode='L')
  assert manual_files.read_rgb_image(path, 'a frame') == path.read_bytes()


@pytest.mark.parametrize('mode', ['L', 'RGBA', 'LA', 'P'])
def test_eight_bit_modes_read_as_their_colours(tmp_path, mode):
  """Gray repeated, alpha dropped (the colour as stored), palette colours."""
  gray = BLOCKS.astype(np.uint8)
  if mode == 'RGBA':
    image = Image.fromarray(np.dstack([_gray_rgb(gray), 255 - gray]), 'RGBA')
  elif mode == 'LA':
    image = Image.fromarray(np.dstack([gray, 255 - gray]), 'LA')
  else:
    image = Image.fromarray(gray).convert(mode)
  assert image.mode == mode
  data = manual_files.read_rgb_image(_save(tmp_path, image, 'a.png'), 'x')
  np.testing.assert_allclose(_decode(data), _gray_rgb(gray), atol=2)


def test_sixteen_bit_gray_png_keeps_the_high_byte(tmp_path):
  # PIL's own convert('RGB') would clip these to 255.
  gray = (BLOCKS * 256 + 0x7F).astype(np.uint16)
  image = Image.fromarray(gray)
  path = _save(tmp_path, image, 'a.png')
  assert Image.open(path).mode == 'I;16'
  np.testing.assert_allclose(
      _decode(manual_files.read_rgb_image(path, 'x')), _gray_rgb(BLOCKS),
      atol=2)


def test_sixteen_bit_rgb_png_keeps_the_high_byte(tmp_path):
  pixels = np.dstack([BLOCKS, 255 - BLOCKS, BLOCKS // 2]) * 256 + 0xFF
  path = tmp_path / 'a.png'
  path.write_bytes(_png16_rgb(pixels))
  np.testing.assert_allclose(_decode(manual_files.read_rgb_image(path, 'x')),
                             pixels >> 8, atol=2)


def test_float_images_name_the_file_and_mode(tmp_path):
  path = _save(tmp_path, Image.fromarray(BLOCKS.astype(np.float32)), 'a.tiff')
  with pytest.raises(manual_files.ImageError,
                     match=r"a.tiff: image mode 'F' has no defined RGB"):
    manual_files.read_rgb_image(path, 'x')


@pytest.mark.parametrize('content,message', [
    (b'', 'empty file .*a.jpg \\(0 bytes\\)'),
    (b'not an image', 'cannot read .*a.jpg as an image'),
    ('truncated', 'cannot read .*a.jpg as an image .*truncated'),
])
def test_unreadable_images_name_the_file(tmp_path, content, message):
  path = tmp_path / 'a.jpg'
  if content == 'truncated':
    fixtures.write_jpeg(path, 64, 64)
    content = path.read_bytes()[:-100]
  path.write_bytes(content)
  with pytest.raises(manual_files.ImageError, match=message) as error:
    manual_files.read_rgb_image(path, 'the frame')
  assert error.value.path == str(path)


def test_unknown_policy_is_refused():
  with pytest.raises(ValueError, match=r"bad_images='drop': expected one of "
                     r"\('error', 'skip'\)"):
    flic.FlicPose(data_dir='/nonexistent', bad_images='drop')


def _spoil_flic(manual_dir):
  """A FLIC folder whose train frame 2 is truncated and test frame 1 empty."""
  fixtures.write_flic_dataset(manual_dir)
  images = manual_dir / 'FLIC' / 'images'
  truncated = images / 'movie-00000002.jpg'
  truncated.write_bytes(truncated.read_bytes()[:-100])
  (images / 'movie-00000004.jpg').write_bytes(b'')
  return truncated, images / 'movie-00000004.jpg'


def test_flic_error_policy_names_the_file(tmp_path):
  _spoil_flic(tmp_path / 'manual')
  with pytest.raises(manual_files.ImageError,
                     match=r'movie-00000002.jpg as an image \(the FLIC frame '
                     r'of examples\(2\).filepath\)'):
    flic.build(tmp_path / 'manual', tmp_path / 'tfds')


def test_flic_skip_policy_counts_and_lists_the_skipped(tmp_path):
  truncated, empty = _spoil_flic(tmp_path / 'manual')
  builder = flic.build(tmp_path / 'manual', tmp_path / 'tfds',
                       bad_images='skip')
  train, test = builder.as_data_source('train'), builder.as_data_source('test')
  assert builder.info.splits['train'].num_examples == len(train) == 2
  assert builder.info.splits['test'].num_examples == len(test) == 1
  assert [int(r['example_index']) for r in train] == [0, 2]
  assert int(test[0]['example_index']) == 4
  # Written beside the data: a fresh builder reads it back.
  reloaded = flic.FlicPose(data_dir=str(tmp_path / 'tfds')).info.metadata
  skipped = reloaded['skipped_images']
  assert [s['file'] for s in skipped['train']] == [str(truncated)]
  assert 'truncated' in skipped['train'][0]['error']
  assert [s['file'] for s in skipped['test']] == [str(empty)]


def test_mpii_skips_every_person_of_a_bad_image(tmp_path, monkeypatch):
  monkeypatch.setattr(valid_split, 'load', lambda: np.array([[0, 1]]))
  images = fixtures.mpii_images() + [
      ('f.jpg', [{'scale': 0.3, 'objpos': {'x': 7.0, 'y': 8.0}}], False)]
  fixtures.write_mpii(tmp_path / 'manual', fixtures.mpii_release(images),
                      [name for name, _, _ in images])
  (tmp_path / 'manual' / 'images' / 'd.jpg').write_bytes(b'\xff\xd8broken')
  with pytest.raises(manual_files.ImageError, match='images/d.jpg'):
    mpii.build(tmp_path / 'manual', tmp_path / 'tfds')
  builder = mpii.build(tmp_path / 'manual', tmp_path / 'tfds2',
                       bad_images='skip')
  # Test image d.jpg holds two persons; f.jpg one.
  assert [int(r['annolist_index']) for r in builder.as_data_source('test')
          ] == [5]
  assert len(builder.as_data_source('train')) == 2
  skipped = builder.info.metadata['skipped_images']
  assert {k: len(v) for k, v in skipped.items()} == {
      'train': 0, 'validation': 0, 'test': 2}


def test_a_split_with_every_image_skipped_is_an_error():
  def bad():
    raise manual_files.ImageError('a.jpg', 'cannot read a.jpg')
  with pytest.raises(manual_files.ManualFileError,
                     match=r'every example of the test split .*\(2, e.g. '
                     r'cannot read a.jpg\)'):
    list(manual_files.generate('test', [(0, bad), (1, bad)], 'skip', {}))


def test_lsp_skips_a_missing_image(tmp_path):
  fixtures.write_lsp(tmp_path / 'lsp_dataset', fixtures.lsp_joints(2000), 4)
  (tmp_path / 'lsp_dataset' / 'images' / 'im1500.jpg').unlink()
  builder = lsp.build(tmp_path, tmp_path / 'tfds', bad_images='skip')
  test = builder.as_data_source('test')
  assert len(test) == 999 and int(test[499]['example_index']) == 1500
  assert [s['file'] for s in builder.info.metadata['skipped_images']['test']
          ] == [str(tmp_path / 'lsp_dataset' / 'images' / 'im1500.jpg')]


def test_data_config_selects_the_policy_and_each_opening_warns(tmp_path,
                                                               caplog):
  _spoil_flic(tmp_path / 'manual')
  config = ml_collections.ConfigDict({
      'name': 'flic', 'builder_config': 'flic', 'data_dir': str(tmp_path),
      'manual_dir': str(tmp_path / 'manual'), 'bad_images': 'error'})
  with pytest.raises(manual_files.ImageError, match='movie-00000002.jpg'):
    datasets.load_split(config, 'train')
  config.bad_images = 'skip'
  source, _ = datasets.load_split(config, 'train')
  assert len(source) == 2
  caplog.clear()
  source, _ = datasets.load_split(config, 'test')  # built: only opened
  assert len(source) == 1
  assert re.search(r'flic_pose/flic/1.1.0 test: 1 examples were left out .*'
                   r'movie-00000004.jpg', caplog.text)
