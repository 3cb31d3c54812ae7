"""`flic_pose`: FLIC (Sapp & Taskar, CVPR 2013) and FLIC-plus (Tompson et al.).

A TFDS builder (array_record, no TensorFlow) over the manually downloaded
files; see `MANUAL_DOWNLOAD_INSTRUCTIONS`. Configs:
  'flic'       train = examples.mat istrain (3987), test = istest (1016).
  'flic_plus'  train = FLIC-full's examples.mat at tr_plus_indices.mat
               (17380, 1-based), test = FLIC's istest (1016), as the paper.

  builder = build('/data/manual', '/data/tfds', 'flic')
  source = builder.as_data_source('test')        # source[i] is example i

Features, in image pixels (x, y), 0-based (examples.mat is 1-based Matlab:
1 is subtracted on load), pixel centres at integers:
  image [H, W, 3] uint8, the original JPEG; joints [11, 2] in
  `joint_sets.FLIC` order (examples.mat coords columns 1-7, 10, 13, 14, 17);
  visible [11] bool, labelled (coords not NaN); torso_box [4] (x1, y1, x2, y2)
  and its centre torso_center [2], the paper's crop centre; person_scale, the
  frame height in pixels: with config `data.box_scale = 4/3` the 320x240 crop
  is the paper's window of the half-resolution frame around the torso;
  backward_facing, True where the labels follow the camera (r_shoulder.x >
  l_shoulder.x; evaluation swaps left and right for these); image_name, the
  examples.mat filepath; example_index, 0-based index into that examples.mat.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np
import tensorflow_datasets as tfds

from cascade_jax import joint_sets
from cascade_jax.data import features
from cascade_jax.data import manual_files

# 0-based columns of examples.mat coords [2, 29] holding the 11 FLIC joints.
COORD_COLUMNS = (0, 1, 2, 3, 4, 5, 6, 9, 12, 13, 16)
NUM_COORDS = 29

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Config 'flic': download FLIC.zip from
https://bensapp.github.io/flic-dataset.html and unzip it into the manual
directory, so that it holds
  <manual_dir>/FLIC/examples.mat
  <manual_dir>/FLIC/images/<filepath of each example>.jpg   (5003 frames)
Config 'flic_plus' needs the above (its test split is FLIC's) and also
FLIC-full.zip from the same page, unzipped beside it, with tr_plus_indices.mat
from https://cims.nyu.edu/~tompson/flic_plus.htm copied into it:
  <manual_dir>/FLIC-full/examples.mat
  <manual_dir>/FLIC-full/images/<filepath>.jpg
  <manual_dir>/FLIC-full/tr_plus_indices.mat
"""


@dataclasses.dataclass(frozen=True)
class FlicExample:
  """One examples.mat entry, coordinates 0-based.

  Attributes:
    joints: [11, 2] float32, zero where unlabelled.
    visible: [11] bool, labelled.
    torso_box: [4] float32 (x1, y1, x2, y2).
    image_name: the filepath field (a file name inside images/).
    image_height: the first entry of imgdims.
    is_train: istrain.
    is_test: istest.
  """
  joints: np.ndarray
  visible: np.ndarray
  torso_box: np.ndarray
  image_name: str
  image_height: int
  is_train: bool
  is_test: bool

  @property
  def backward_facing(self) -> bool:
    """Labels that follow the camera: r_shoulder.x > l_shoulder.x."""
    left = joint_sets.FLIC.index('l_shoulder')
    right = joint_sets.FLIC.index('r_shoulder')
    return bool(self.visible[left] and self.visible[right]
                and self.joints[right, 0] > self.joints[left, 0])


def read_examples(path: os.PathLike | str) -> list[FlicExample]:
  """Parses a FLIC (or FLIC-full) examples.mat."""
  what = 'FLIC examples.mat with a struct array "examples"'
  path = os.fspath(path)
  entries = manual_files.as_list(
      manual_files.load_mat(path, ('examples',), what)['examples'])
  if not entries:
    raise manual_files.ManualFileError(f'{path}: "examples" is empty')
  return [_parse_example(entry, path, f'examples({i + 1})')
          for i, entry in enumerate(entries)]


def _parse_example(entry, path: str, where: str) -> FlicExample:
  coords = np.asarray(manual_files.field(entry, 'coords', path, where),
                      np.float64)
  if coords.shape != (2, NUM_COORDS):
    raise manual_files.ManualFileError(
        f'{path}: {where}.coords should be 2x{NUM_COORDS}, got {coords.shape}')
  joints = coords[:, COORD_COLUMNS].T - 1.0
  visible = np.isfinite(joints).all(axis=1)
  torso_box = np.asarray(manual_files.field(entry, 'torsobox', path, where),
                         np.float64).ravel()
  if torso_box.shape != (4,):
    raise manual_files.ManualFileError(
        f'{path}: {where}.torsobox should be [x1 y1 x2 y2], got '
        f'{torso_box.shape}')
  imgdims = np.asarray(manual_files.field(entry, 'imgdims', path, where)).ravel()
  if imgdims.size < 2:
    raise manual_files.ManualFileError(
        f'{path}: {where}.imgdims should be [height width channels], got '
        f'{imgdims}')
  image_name = manual_files.field(entry, 'filepath', path, where)
  if not isinstance(image_name, str) or not image_name:
    raise manual_files.ManualFileError(
        f'{path}: {where}.filepath should be an image file name, got '
        f'{image_name!r}')
  return FlicExample(
      joints=np.where(visible[:, None], joints, 0.0).astype(np.float32),
      visible=visible,
      torso_box=(torso_box - 1.0).astype(np.float32),
      image_name=image_name,
      image_height=int(imgdims[0]),
      is_train=bool(manual_files.scalar(
          manual_files.field(entry, 'istrain', path, where), path,
          f'{where}.istrain')),
      is_test=bool(manual_files.scalar(
          manual_files.field(entry, 'istest', path, where), path,
          f'{where}.istest')))


def read_plus_indices(path: os.PathLike | str, num_examples: int) -> np.ndarray:
  """tr_plus_indices.mat as 0-based indices into FLIC-full's examples.mat."""
  path = os.fspath(path)
  indices = np.asarray(manual_files.load_mat(
      path, ('tr_plus_indices',),
      'FLIC-plus tr_plus_indices (1-based indices into FLIC-full examples.mat)'
  )['tr_plus_indices']).ravel()
  if (indices.size == 0 or not np.issubdtype(indices.dtype, np.number)
      or indices.min() < 1 or indices.max() > num_examples):
    raise manual_files.ManualFileError(
        f'{path}: tr_plus_indices should be 1-based indices in [1, '
        f'{num_examples}] (FLIC-full examples.mat has {num_examples} entries)')
  return indices.astype(np.int64) - 1


@dataclasses.dataclass(eq=False)
class FlicConfig(tfds.core.BuilderConfig):
  """Attributes: plus, train on FLIC-plus (FLIC-full at tr_plus_indices)."""
  plus: bool = False


class FlicPose(tfds.core.GeneratorBasedBuilder):
  """FLIC / FLIC-plus with 11 joints; see the module docstring."""

  VERSION = tfds.core.Version(manual_files.BUILDER_VERSION)
  RELEASE_NOTES = manual_files.BUILDER_RELEASE_NOTES
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      FlicConfig(name='flic', description='FLIC: 3987 train, 1016 test.'),
      FlicConfig(name='flic_plus', plus=True,
                 description='FLIC-plus train (17380), FLIC test (1016).'),
  ]
  DEFAULT_CONFIG_NAME = 'flic'

  def __init__(self, *, bad_images: str = 'error', **kwargs):
    """Args: bad_images, 'error' or 'skip' (manual_files.generate)."""
    self._bad_images = manual_files.check_bad_images(bad_images)
    super().__init__(file_format='array_record', **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    num_joints = joint_sets.FLIC.num_joints
    return features.dataset_info(
        self, description=__doc__.splitlines()[0],
        disable_shuffling=True,
        features=features.pose_features(
            num_joints,
            torso_box=tfds.features.Tensor(shape=(4,), dtype=np.float32),
            torso_center=tfds.features.Tensor(shape=(2,), dtype=np.float32),
            person_scale=tfds.features.Tensor(shape=(), dtype=np.float32),
            backward_facing=tfds.features.Tensor(shape=(), dtype=np.bool_),
            image_name=tfds.features.Text(),
            example_index=tfds.features.Tensor(shape=(), dtype=np.int32),
        ),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    flic_dir = os.path.join(dl_manager.manual_dir, 'FLIC')
    flic = read_examples(os.path.join(flic_dir, 'examples.mat'))
    test = [i for i, example in enumerate(flic) if example.is_test]
    if not self.builder_config.plus:
      train = [i for i, example in enumerate(flic) if example.is_train]
      return {'train': self._generate_examples('train', flic_dir, flic, train),
              'test': self._generate_examples('test', flic_dir, flic, test)}
    full_dir = os.path.join(dl_manager.manual_dir, 'FLIC-full')
    full = read_examples(os.path.join(full_dir, 'examples.mat'))
    train = read_plus_indices(os.path.join(full_dir, 'tr_plus_indices.mat'),
                              len(full))
    return {'train': self._generate_examples('train', full_dir, full, train),
            'test': self._generate_examples('test', flic_dir, flic, test)}

  def _generate_examples(self, split, folder, examples, indices):
    return manual_files.generate(
        split, ((int(i), functools.partial(make_record, folder, examples[i],
                                           int(i))) for i in indices),
        self._bad_images, self.info.metadata)


def make_record(folder: str, example: FlicExample, index: int) -> dict:
  """The builder's features of ``example``, its image read from folder/images."""
  image_path = os.path.join(folder, 'images', example.image_name)
  box = example.torso_box
  return {
      'image': manual_files.read_rgb_image(
          image_path, f'the FLIC frame of examples({index + 1}).filepath'),
      'joints': example.joints,
      'visible': example.visible,
      'torso_box': box,
      'torso_center': 0.5 * (box[:2] + box[2:]),
      'person_scale': np.float32(example.image_height),
      'backward_facing': example.backward_facing,
      'image_name': example.image_name,
      'example_index': np.int32(index),
  }


def build(manual_dir: os.PathLike | str, data_dir: os.PathLike | str,
          config: str = 'flic', bad_images: str = 'error') -> FlicPose:
  """Builds config 'flic' or 'flic_plus' from ``manual_dir`` into ``data_dir``
  (a no-op when already built) and returns the builder. ``bad_images``:
  'error' or 'skip' (see `manual_files.generate`)."""
  builder = FlicPose(config=config, data_dir=os.fspath(data_dir),
                     bad_images=bad_images)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.fspath(manual_dir)))
  return builder
