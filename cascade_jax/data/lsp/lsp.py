"""`lsp_pose`: Leeds Sports Pose (Johnson & Everingham, BMVC 2010), person-centric.

A TFDS builder (array_record, no TensorFlow) over the manually downloaded
files; see `MANUAL_DOWNLOAD_INSTRUCTIONS`. Configs:
  'lsp'           train = images 1-1000, test = images 1001-2000.
  'lsp_extended'  train = LSP's 1000 + LSP-extended's 10000, test = LSP's.

  builder = build('/data/manual', '/data/tfds', 'lsp')
  source = builder.as_data_source('test')        # source[i] is example i

The third row of joints.mat is read per file: in LSP's (3 x 14 x 2000) 1 means
OCCLUDED (whatever its README says), in LSP-extended's (14 x 3 x 10000) 1 means
visible. Every joint with finite coordinates counts as labelled.

Features, in image pixels (x, y), 0-based (joints.mat is 1-based Matlab: 1 is
subtracted on load), pixel centres at integers:
  image [H, W, 3] uint8, the original JPEG; joints [14, 2] in
  `joint_sets.LSP` order; visible [14] bool, labelled; occluded [14] bool;
  person_center [2], the centre of the labelled joints' bounding box;
  person_scale = PERSON_SCALE_PER_EXTENT * the box's longer side, in pixels,
  a person height comparable with MPII's 200 * scale (LSP has no scale
  annotation); image_name, e.g. 'im0001.jpg'; example_index, 0-based in its
  joints.mat.
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

NUM_JOINTS = joint_sets.LSP.num_joints
NUM_LSP = 2000
NUM_TRAIN = 1000
# The median of 200 * scale / (longer side of the joints' box) over the 2017
# fully labelled persons of MPII's validation split is 1.14.
PERSON_SCALE_PER_EXTENT = 1.15

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Config 'lsp': download lsp_dataset.zip from
http://sam.johnson.io/research/lsp.html and unzip it into
<manual_dir>/lsp_dataset, so that it holds
  <manual_dir>/lsp_dataset/joints.mat              (3 x 14 x 2000)
  <manual_dir>/lsp_dataset/images/im0001.jpg ... im2000.jpg
Config 'lsp_extended' needs the above and also lspet_dataset.zip from
http://sam.johnson.io/research/lspet.html unzipped into
<manual_dir>/lspet_dataset:
  <manual_dir>/lspet_dataset/joints.mat            (14 x 3 x 10000)
  <manual_dir>/lspet_dataset/images/im00001.jpg ... im10000.jpg
"""


@dataclasses.dataclass(frozen=True)
class LspLabels:
  """The labels of one joints.mat, coordinates 0-based.

  Attributes:
    joints: [N, 14, 2] float32, zero where unlabelled.
    visible: [N, 14] bool, labelled.
    occluded: [N, 14] bool.
  """
  joints: np.ndarray
  visible: np.ndarray
  occluded: np.ndarray

  def __len__(self) -> int:
    return len(self.joints)


def read_joints(path: os.PathLike | str, extended: bool = False) -> LspLabels:
  """Parses LSP's joints.mat, or LSP-extended's with ``extended``."""
  path = os.fspath(path)
  layout = '14 x 3 x N (LSP-extended)' if extended else '3 x 14 x N (LSP)'
  joints = np.asarray(manual_files.load_mat(
      path, ('joints',), f'the array "joints" of {layout}')['joints'])
  expected = (NUM_JOINTS, 3) if extended else (3, NUM_JOINTS)
  if joints.ndim == 2:  # squeeze_me drops N when N == 1.
    joints = joints[..., None]
  if joints.ndim != 3 or joints.shape[:2] != expected:
    raise manual_files.ManualFileError(
        f'{path}: "joints" should be {layout}, got {joints.shape}')
  # -> [N, 14, 3] with (x, y, flag).
  joints = np.transpose(joints, (2, 0, 1) if extended else (2, 1, 0))
  coords = joints[..., :2].astype(np.float64) - 1.0
  visible = np.isfinite(coords).all(axis=-1)
  flag = joints[..., 2] != 0
  occluded = ~flag if extended else flag
  return LspLabels(
      joints=np.where(visible[..., None], coords, 0.0).astype(np.float32),
      visible=visible,
      occluded=visible & occluded)


def person_box(joints: np.ndarray, visible: np.ndarray):
  """(person_center [2], person_scale) from the labelled joints' bounding box.

  Args:
    joints: [14, 2]; visible: [14] bool, at least one True.
  """
  labelled = joints[visible]
  low, high = labelled.min(axis=0), labelled.max(axis=0)
  center = (0.5 * (low + high)).astype(np.float32)
  return center, np.float32(PERSON_SCALE_PER_EXTENT * (high - low).max())


@dataclasses.dataclass(eq=False)
class LspConfig(tfds.core.BuilderConfig):
  """Attributes: extended, add LSP-extended's 10000 images to train."""
  extended: bool = False


class LspPose(tfds.core.GeneratorBasedBuilder):
  """LSP / LSP-extended with 14 joints; see the module docstring."""

  VERSION = tfds.core.Version(manual_files.BUILDER_VERSION)
  RELEASE_NOTES = manual_files.BUILDER_RELEASE_NOTES
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      LspConfig(name='lsp', description='LSP: 1000 train, 1000 test.'),
      LspConfig(name='lsp_extended', extended=True,
                description='LSP + LSP-extended train (11000), LSP test.'),
  ]
  DEFAULT_CONFIG_NAME = 'lsp'

  def __init__(self, *, bad_images: str = 'error', **kwargs):
    """Args: bad_images, 'error' or 'skip' (manual_files.generate)."""
    self._bad_images = manual_files.check_bad_images(bad_images)
    super().__init__(file_format='array_record', **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return features.dataset_info(
        self, description=__doc__.splitlines()[0],
        disable_shuffling=True,
        features=features.pose_features(
            NUM_JOINTS,
            occluded=tfds.features.Tensor(shape=(NUM_JOINTS,),
                                             dtype=np.bool_),
            person_center=tfds.features.Tensor(shape=(2,),
                                                  dtype=np.float32),
            person_scale=tfds.features.Tensor(shape=(), dtype=np.float32),
            image_name=tfds.features.Text(),
            example_index=tfds.features.Tensor(shape=(), dtype=np.int32),
        ),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    lsp_dir = os.path.join(dl_manager.manual_dir, 'lsp_dataset')
    path = os.path.join(lsp_dir, 'joints.mat')
    lsp = read_joints(path)
    if len(lsp) != NUM_LSP:
      raise manual_files.ManualFileError(
          f'{path}: expected {NUM_LSP} LSP examples, got {len(lsp)}')
    train = [(lsp_dir, lsp, i, 4) for i in range(NUM_TRAIN)]
    test = [(lsp_dir, lsp, i, 4) for i in range(NUM_TRAIN, NUM_LSP)]
    if self.builder_config.extended:
      lspet_dir = os.path.join(dl_manager.manual_dir, 'lspet_dataset')
      lspet = read_joints(os.path.join(lspet_dir, 'joints.mat'), extended=True)
      train += [(lspet_dir, lspet, i, 5) for i in range(len(lspet))]
    return {'train': self._generate_examples('train', train),
            'test': self._generate_examples('test', test)}

  def _generate_examples(self, split, entries):
    return manual_files.generate(
        split, ((key, functools.partial(make_record, *entry))
                for key, entry in enumerate(entries)),
        self._bad_images, self.info.metadata)


def make_record(folder: str, labels: LspLabels, index: int,
                digits: int) -> dict:
  """The features of example ``index`` (0-based); its image is
  folder/images/im<index + 1, zero-padded to ``digits``>.jpg."""
  name = f'im{index + 1:0{digits}d}.jpg'
  if not labels.visible[index].any():
    raise manual_files.ManualFileError(
        f'{folder}/joints.mat: example {index + 1} has no labelled joint to '
        'place the person')
  center, scale = person_box(labels.joints[index], labels.visible[index])
  return {
      'image': manual_files.read_rgb_image(
          os.path.join(folder, 'images', name),
          f'the image of example {index + 1} of {folder}/joints.mat'),
      'joints': labels.joints[index],
      'visible': labels.visible[index],
      'occluded': labels.occluded[index],
      'person_center': center,
      'person_scale': scale,
      'image_name': name,
      'example_index': np.int32(index),
  }


def build(manual_dir: os.PathLike | str, data_dir: os.PathLike | str,
          config: str = 'lsp', bad_images: str = 'error') -> LspPose:
  """Builds config 'lsp' or 'lsp_extended' from ``manual_dir`` into
  ``data_dir`` (a no-op when already built) and returns the builder.
  ``bad_images``: 'error' or 'skip' (see `manual_files.generate`)."""
  builder = LspPose(config=config, data_dir=os.fspath(data_dir),
                    bad_images=bad_images)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.fspath(manual_dir)))
  return builder
