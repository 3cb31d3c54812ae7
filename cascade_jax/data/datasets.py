"""Opens a dataset split named by the config: one explicit place, found by grep.

Returns a random-access TFDS data source (array_record, no TensorFlow) and the
dataset's joint set. The built-in synthetic dataset is generated on first use;
the real datasets ('flic', 'mpii', 'lsp') are built on first use from the
files in `data.manual_dir` (default <data_dir>/downloads/manual; each
builder's MANUAL_DOWNLOAD_INSTRUCTIONS say which) with the builder config
`data.builder_config` ('flic' / 'flic_plus', 'mpii', 'lsp' / 'lsp_extended');
`data.bad_images` ('error', default, or 'skip') says what a build does with
an unreadable image (`manual_files.generate`); MPII's `data.valid_split_file`
('' = the standard split) names another validation split (`mpii.build`).

MPII and LSP crops are scale-normalised by default: the crop side is
`data.box_scale` * the person's height (record 'person_scale'). With
`data.scale_normalised = False` (paper Table 4, "unnormalized") the crop keeps
the original image scale: 'person_scale' is replaced by
input width / box_scale, so the crop is `data.input_size` image pixels.

Synthetic splits small enough (`MAX_CACHED_BYTES` decoded) come wrapped in a
`CachedSource`, which keeps the decoded records it has read: the demo's input
pipeline then decodes each PNG once, not once per epoch.
"""

from __future__ import annotations

import os

from absl import logging
import ml_collections
import numpy as np

from cascade_jax import joint_sets

KNOWN_DATASETS = ('synthetic_pose', 'flic', 'mpii', 'lsp')
# Synthetic splits up to this size (decoded) are kept in memory once read:
# the demo's 4000 128x128 images take 197 MB.
MAX_CACHED_BYTES = 512 * 2**20


def joint_set(config: ml_collections.ConfigDict) -> joint_sets.JointSet:
  """The joint set of the dataset of ``config.data``, without opening it."""
  if config.name == 'synthetic_pose':
    return joint_sets.get(config.builder_config)
  if config.name in ('flic', 'mpii', 'lsp'):
    return joint_sets.get(config.name)
  raise ValueError(f'data.name={config.name!r} is not a known dataset; '
                   f'known: {KNOWN_DATASETS}')


def load_split(config: ml_collections.ConfigDict, split: str):
  """(data source, JointSet) for ``split`` of the dataset of ``config.data``."""
  builder, joint_set = _builder(config)
  if config.name == 'synthetic_pose':
    source = builder.as_data_source(split)
    if _decoded_bytes(config, split) <= MAX_CACHED_BYTES:
      source = CachedSource(source)
    return source, joint_set
  source = _jpeg_bytes(builder, split)
  if config.name in ('mpii', 'lsp'):
    source = _person_scale(source, config)
  return source, joint_set


def shared_examples(config: ml_collections.ConfigDict, split_a: str,
                    split_b: str) -> int:
  """How many examples two splits of the dataset of ``config.data`` have in
  common; TFDS split strings such as 'train[:400]', 'train[10%:]' or
  'train+test'."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder, _ = _builder(config)
  infos = builder.info.splits

  def ranges(split):  # [(split name, first, stop)], TFDS's resolution
    return [(part.splitname, part.from_ or 0,
             infos[part.splitname].num_examples if part.to is None else part.to)
            for part in tfds.core.ReadInstruction.from_spec(split).to_absolute(
                infos)]

  return sum(max(0, min(stop_a, stop_b) - max(start_a, start_b))
             for name_a, start_a, stop_a in ranges(split_a)
             for name_b, start_b, stop_b in ranges(split_b)
             if name_a == name_b)


def _builder(config: ml_collections.ConfigDict):
  """(prepared TFDS builder, JointSet) of the dataset of ``config.data``."""
  # Builders are imported here so that TFDS loads only when a dataset is
  # opened.
  # pylint: disable=g-import-not-at-top
  if config.name == 'synthetic_pose':
    from cascade_jax.data.synthetic_pose import synthetic_pose
    builder = synthetic_pose.SyntheticPose(
        config=synthetic_pose.SyntheticPoseConfig(
            joint_set=config.builder_config,
            image_size=tuple(config.image_size),
            num_train=config.num_train,
            num_test=config.num_test,
            seed=config.dataset_seed,
            difficulty=_synthetic_difficulty(config)),
        data_dir=config.data_dir)
    builder.download_and_prepare()
    return builder, joint_sets.get(config.builder_config)
  if config.name == 'flic':
    from cascade_jax.data.flic import flic
    return (flic.build(_manual_dir(config), config.data_dir,
                       config.builder_config, _bad_images(config)),
            joint_sets.FLIC)
  if config.name == 'mpii':
    from cascade_jax.data.mpii import mpii
    return (mpii.build(_manual_dir(config), config.data_dir,
                       _bad_images(config),
                       config.get('valid_split_file', '')),
            joint_sets.MPII)
  if config.name == 'lsp':
    from cascade_jax.data.lsp import lsp
    return (lsp.build(_manual_dir(config), config.data_dir,
                      config.builder_config, _bad_images(config)),
            joint_sets.LSP)
  # pylint: enable=g-import-not-at-top
  raise ValueError(f'data.name={config.name!r} is not a known dataset; '
                   f'known: {KNOWN_DATASETS}')


def _decoded_bytes(config: ml_collections.ConfigDict, split: str) -> int:
  """Bytes of a synthetic split's decoded images (at most: a slice such as
  'train[400:]' counts as its whole split)."""
  height, width = config.image_size
  count = config.num_train if split.startswith('train') else config.num_test
  return count * height * width * 3


def _synthetic_difficulty(config: ml_collections.ConfigDict):
  """The synthetic scenes' default difficulty; ``data.num_distractors``, a
  (min, max) range of other people, when the config sets it (the spatial
  model is measured on (0, 0) and (2, 2) scenes)."""
  from cascade_jax.data import synthetic_figures  # pylint: disable=g-import-not-at-top
  if not config.get('num_distractors'):
    return synthetic_figures.Difficulty()
  return synthetic_figures.Difficulty(
      num_distractors=tuple(int(n) for n in config.num_distractors))


def _bad_images(config: ml_collections.ConfigDict) -> str:
  """data.bad_images: 'error' (default) or 'skip' (manual_files.generate)."""
  return config.get('bad_images', 'error')


def _jpeg_bytes(builder, split: str):
  """The split with images left as JPEG bytes: the pipeline decodes them at
  the reduced DCT scale its crop allows (pipeline.py), ~25% faster.

  Warns, on every opening, when the build left examples of the split out
  (data.bad_images='skip'): results on it are then not comparable with the
  full split's.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  skipped = builder.info.metadata.get('skipped_images', {}).get(split, [])
  if skipped:
    logging.warning('%s %s: %d examples were left out at build time '
                    '(unreadable images, bad_images=skip; listed in %s): %s',
                    builder.info.full_name, split, len(skipped),
                    os.path.join(builder.data_dir, 'metadata.json'),
                    ', '.join(sorted({s['file'] for s in skipped})))
  return builder.as_data_source(
      split, decoders={'image': tfds.decode.SkipDecoding()})


def _manual_dir(config: ml_collections.ConfigDict) -> str:
  """data.manual_dir, or TFDS's default <data_dir>/downloads/manual."""
  manual_dir = config.get('manual_dir')
  if not manual_dir:
    return f'{config.data_dir}/downloads/manual'
  return manual_dir


def _person_scale(source, config: ml_collections.ConfigDict):
  """``source`` as is when data.scale_normalised (default), else at image scale."""
  if config.get('scale_normalised', True):
    return source
  return OriginalScaleSource(source, config.input_size[0] / config.box_scale)


class OriginalScaleSource:
  """A data source whose records' 'person_scale' is one constant.

  With crop side = box_scale * person_scale, the constant input width /
  box_scale makes every crop keep the original image scale: the unnormalised
  setting of paper Table 4.
  """

  def __init__(self, source, person_scale: float):
    self._source = source
    self._person_scale = np.float32(person_scale)

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index):
    return dict(self._source[index], person_scale=self._person_scale)


class CachedSource:
  """A data source that keeps every record it has read.

  For splits that fit in memory (the synthetic ones): after the first epoch
  a record costs a lookup instead of reading and decoding its PNG (~0.5 ms
  of the ~0.7 ms per example of the demo's input pipeline, which shares the
  2 CPU cores with the train step). Each grain worker process fills its own
  copy. Cached arrays are made read-only, so a consumer that would modify a
  record in place fails instead of corrupting later epochs.
  """

  def __init__(self, source):
    self._source = source
    self._records = {}

  def __len__(self) -> int:
    return len(self._source)

  def __repr__(self) -> str:
    # grain checks a restored iterator's source by repr: it must name the
    # wrapped source, not this object's address, or no checkpoint resumes.
    return f'CachedSource({self._source!r})'

  def __getitem__(self, index):
    record = self._records.get(index)
    if record is None:
      record = self._source[index]
      for value in record.values():
        if isinstance(value, np.ndarray):
          value.setflags(write=False)
      self._records[index] = record
    return record
