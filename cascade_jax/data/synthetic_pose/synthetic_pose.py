"""`synthetic_pose`: people on clutter, rendered deterministically from a seed.

A TFDS builder (array_record, no TensorFlow needed) over
`cascade_jax.data.synthetic_figures`. Configs 'flic' (11 FLIC joints, upper
body framed as in FLIC) and 'mpii' (16 MPII joints, whole body); a custom
`SyntheticPoseConfig` gets a name that lists its non-default values, so two
configs never share a data directory:

  config = SyntheticPoseConfig(joint_set='flic', num_train=64, num_test=16)
  builder = SyntheticPose(config=config, data_dir=data_dir)
  # config.name == 'flic_num_test-16_num_train-64'
  builder.download_and_prepare()
  source = builder.as_data_source('train')   # random access, no TensorFlow

Example i of a split is rendered from its own generator seeded with
(seed, split, i), so the data do not depend on generation order; records keep
index order (source[i] is example i). Features, in image pixels (x, y), pixel
centres at integers:
  image [H, W, 3] uint8 (PNG); joints [J, 2]; visible [J] bool (inside the
  image); torso_box [4] (x1, y1, x2, y2) around shoulders and hips and its
  centre torso_center [2]; person_center [2], the centre of the bounding box of
  the framed joints (head top to hips for 'flic', all for the others);
  person_scale, the standing height head top to ankles, in frame or not;
  distractor_joints [2, J, 2] (zero rows past num_distractors); num_distractors.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import tensorflow_datasets as tfds

from cascade_jax import joint_sets
from cascade_jax.data import features
from cascade_jax.data import synthetic_figures

# 'unlabelled': images without labels, for exports that need a third split
# (MPII's test images); the builder itself writes 'train' and 'test'.
_SPLIT_IDS = {'train': 0, 'test': 1, 'unlabelled': 2}
MAX_DISTRACTORS = 2


@dataclasses.dataclass(eq=False)
class SyntheticPoseConfig(tfds.core.BuilderConfig):
  """What to render. The name is derived from the values: leave it empty.

  Attributes:
    joint_set: 'flic' (upper-body framing) or another joint set of
      `cascade_jax.joint_sets` (whole-body framing).
    image_size: (H, W) of every image.
    num_train: examples in the 'train' split.
    num_test: examples in the 'test' split.
    seed: the dataset's seed; splits and examples derive theirs from it.
    difficulty: distractors, clutter, occlusion, scale and rotation ranges.
  """
  name: str = ''
  joint_set: str = 'flic'
  image_size: tuple[int, int] = (128, 128)
  num_train: int = 4000
  num_test: int = 500
  seed: int = 0
  difficulty: synthetic_figures.Difficulty = synthetic_figures.Difficulty()

  def __post_init__(self):
    joint_sets.get(self.joint_set)  # Raises on an unknown name.
    if len(self.image_size) != 2 or min(self.image_size) < 8:
      raise ValueError(f'image_size must be (H, W) >= 8, got {self.image_size}')
    if self.num_train < 0 or self.num_test < 0:
      raise ValueError('num_train and num_test must be >= 0, got '
                       f'{self.num_train}, {self.num_test}')
    derived = config_name(self)
    if self.name and self.name != derived:
      raise ValueError(f'SyntheticPoseConfig names are derived from the values '
                       f'(here {derived!r}); got name={self.name!r}')
    self.name = derived
    if not self.description:
      self.description = (f'{self.joint_set} joints, '
                          f'{"upper" if self.upper_body else "whole"} body, '
                          f'{self.image_size[0]}x{self.image_size[1]} images.')

  @property
  def upper_body(self) -> bool:
    return self.joint_set == 'flic'


_VALUE_FIELDS = ('image_size', 'num_train', 'num_test', 'seed')


def config_name(config: SyntheticPoseConfig) -> str:
  """'<joint_set>' then '_<field>-<value>' for each non-default value."""
  parts = [config.joint_set]
  default = SyntheticPoseConfig.__dataclass_fields__
  values = {f: (getattr(config, f), default[f].default) for f in _VALUE_FIELDS}
  base = synthetic_figures.Difficulty()
  for field in dataclasses.fields(synthetic_figures.Difficulty):
    values[field.name] = (getattr(config.difficulty, field.name),
                          getattr(base, field.name))
  for field in sorted(values):
    value, default_value = values[field]
    if tuple(np.atleast_1d(value)) != tuple(np.atleast_1d(default_value)):
      parts.append(f'{field}-' + 'x'.join(str(v) for v in np.atleast_1d(value)))
  return '_'.join(parts)


class SyntheticPose(tfds.core.GeneratorBasedBuilder):
  """Synthetic people with FLIC or MPII joints; see the module docstring."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [SyntheticPoseConfig(joint_set='flic'),
                     SyntheticPoseConfig(joint_set='mpii')]
  DEFAULT_CONFIG_NAME = 'flic'

  def __init__(self, *, config=None, **kwargs):
    # A custom config equal to a predefined one is that one (TFDS refuses two
    # different objects with the same name).
    if isinstance(config, SyntheticPoseConfig):
      for known in self.BUILDER_CONFIGS:
        if known.name == config.name:
          config = known
    super().__init__(config=config, file_format='array_record', **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    h, w = config.image_size
    num_joints = joint_sets.get(config.joint_set).num_joints
    return features.dataset_info(
        self, description=__doc__.splitlines()[0],
        # Records stay in index order: source[i] is example i.
        disable_shuffling=True,
        features=features.pose_features(
            num_joints, image_shape=(h, w, 3), image_format='png',
            torso_box=tfds.features.Tensor(shape=(4,), dtype=np.float32),
            torso_center=tfds.features.Tensor(shape=(2,), dtype=np.float32),
            person_center=tfds.features.Tensor(shape=(2,),
                                                  dtype=np.float32),
            person_scale=tfds.features.Tensor(shape=(), dtype=np.float32),
            distractor_joints=tfds.features.Tensor(
                shape=(MAX_DISTRACTORS, num_joints, 2), dtype=np.float32),
            num_distractors=tfds.features.Tensor(shape=(), dtype=np.int32),
        ),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    config = self.builder_config
    return {'train': self._generate_examples('train', config.num_train),
            'test': self._generate_examples('test', config.num_test)}

  def _generate_examples(self, split: str, num_examples: int):
    start = time.perf_counter()
    for index in range(num_examples):
      yield index, make_example(self.builder_config, split, index)
    seconds = max(time.perf_counter() - start, 1e-9)
    print(f'synthetic_pose/{self.builder_config.name} {split}: {num_examples} '
          f'images in {seconds:.1f} s ({num_examples / seconds:.0f} images/s, '
          'rendering and writing)', flush=True)


def make_example(config: SyntheticPoseConfig, split: str, index: int) -> dict:
  """Renders example ``index`` of ``split``: a dict of the builder's features,
  the image as PNG bytes."""
  scene, record = render_example(config, split, index)
  return {'image': synthetic_figures.encode_png(scene.image), **record}


def render_example(config: SyntheticPoseConfig, split: str, index: int
                   ) -> tuple[synthetic_figures.Scene, dict]:
  """(scene, features but the image) of example ``index`` of ``split``.

  Shared by the builder and the exports in other formats
  (`cascade_jax.data.export`), so that both hold the same people.
  """
  if split not in _SPLIT_IDS:
    raise ValueError(f'unknown split {split!r}; known: {sorted(_SPLIT_IDS)}')
  rng = np.random.default_rng([config.seed, _SPLIT_IDS[split], index])
  scene = synthetic_figures.render_scene(rng, config.image_size,
                                         config.difficulty, config.upper_body)
  joint_set = joint_sets.get(config.joint_set)
  joints = scene.figure.joints_for(joint_set)
  body = scene.figure.joints
  torso = body[[synthetic_figures.BODY_JOINTS.index(j) for j in
                ('l_shoulder', 'r_shoulder', 'l_hip', 'r_hip')]]
  torso_box = np.concatenate([torso.min(0), torso.max(0)])
  framed = scene.figure.framed_joints(config.upper_body)
  distractors = np.zeros((MAX_DISTRACTORS, joint_set.num_joints, 2), np.float32)
  for k, other in enumerate(scene.distractors):
    distractors[k] = other.joints_for(joint_set)
  return scene, {
      'joints': joints.astype(np.float32),
      'visible': synthetic_figures.visible_in(joints, config.image_size),
      'torso_box': torso_box.astype(np.float32),
      'torso_center': (0.5 * (torso_box[:2] + torso_box[2:])).astype(
          np.float32),
      'person_center': (0.5 * (framed.min(0) + framed.max(0))).astype(
          np.float32),
      'person_scale': np.float32(scene.figure.height),
      'distractor_joints': distractors,
      'num_distractors': np.int32(len(scene.distractors)),
  }
