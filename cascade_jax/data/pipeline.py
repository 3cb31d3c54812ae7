"""grain input pipeline: person-centred crop, augmentation, Gaussian targets, batches.

Records come from any random-access source (a TFDS data source) as dicts with
'image' uint8 [H, W, 3], 'joints' [J, 2], 'visible' [J] and the crop centre and
person scale named by the config. 'image' may instead be the encoded bytes (a
source opened with decoders={'image': tfds.decode.SkipDecoding()}): a JPEG is
then decoded in the transform at the coarsest DCT scale (1/2, 1/4, 1/8) that
keeps at least one source pixel per crop pixel (about 25% faster than a full
decode of a 1280x720 photo: Huffman decoding is not reduced), and the warp
accounts for the reduction, so the geometry is unchanged. Crop, rotation,
scale and flip are composed into one affine matrix (cascade_jax.geometry)
applied to the image and the joints alike.

Training reads one global order of examples (`GlobalBatches`): global example
g is a record of a shuffle by the seed, augmented with a generator keyed by
(seed, g), and global batch s is examples [s * B, (s + 1) * B). Each JAX
process reads its contiguous slice of every global batch, so the global batch
of a step depends neither on the number of processes nor on the number of
grain workers, and a run resumes at any step (`first_step`) on any number of
processes, as T5X / SeqIO and grain's global index do.
"""

from __future__ import annotations

import dataclasses
import sys

import cv2
import grain.python as grain
import jax
import numpy as np

from cascade_jax import geometry
from cascade_jax import heatmaps
from cascade_jax.data import datasets
from cascade_jax.model import spatial

# Keys a batch carries to the host-side evaluation but never to the device.
HOST_KEYS = ('image_joints', 'image_visible', 'crop_to_image')


@dataclasses.dataclass(frozen=True)
class CropSpec:
  """How a record becomes a model input.

  Attributes:
    input_size: (W, H) of the model input in pixels.
    stride: input pixels per coarse heat-map cell (the pooling factor).
    center_key: record field with the crop centre (x, y).
    box_scale: crop side = box_scale * record['person_scale'] pixels.
    sigma: Gaussian target width in heat-map cells.
    flip_permutation: [J] joint permutation applied on horizontal flips.
    rotation_deg: augmentation rotation range, uniform in [-r, r].
    scale_range: augmentation scale range (person size multiplier).
    flip_probability: probability of a horizontal flip.
    torso_key: record field with the torso position (x, y) that the spatial
      model takes as an extra joint; None when no model needs it.
  """
  input_size: tuple[int, int]
  stride: int
  center_key: str
  box_scale: float
  sigma: float
  flip_permutation: tuple[int, ...]
  rotation_deg: float = 20.0
  scale_range: tuple[float, float] = (0.5, 1.5)
  flip_probability: float = 0.5
  torso_key: str | None = None

  @property
  def heatmap_size(self) -> tuple[int, int]:
    width, height = self.input_size
    return height // self.stride, width // self.stride


def prepare_example(record, spec: CropSpec, rng: np.random.Generator | None):
  """One record -> one model example; augmented when ``rng`` is given.

  Returns a dict: 'image' uint8 [H, W, 3], 'targets' float32 [h, w, J],
  'target_weights' [J], 'joints' [J, 2] in input pixels, 'visible' [J], and the
  host-only keys for evaluation: 'image_joints' and 'image_visible' (the
  original labels) and 'crop_to_image' [3, 3] (input pixels -> image pixels).
  With ``spec.torso_key``, also 'torso' [2]: the record's torso position in
  input pixels, warped (and mirrored) with the joints.
  """
  joints = np.asarray(record['joints'], np.float64)
  visible = np.asarray(record['visible'], bool)
  if joints.ndim != 2 or joints.shape[1] != 2:
    raise ValueError(f"record 'joints' must be [J, 2], got {joints.shape}")
  if visible.shape != joints.shape[:1]:
    raise ValueError(f"record 'visible' must be [{joints.shape[0]}], got "
                     f'{visible.shape}')
  rotation, scale, flip = 0.0, 1.0, False
  if rng is not None:
    rotation = rng.uniform(-spec.rotation_deg, spec.rotation_deg)
    scale = rng.uniform(*spec.scale_range)
    flip = bool(rng.random() < spec.flip_probability)
  matrix = crop_matrix(record, spec, rotation, scale, flip)
  if is_encoded(record['image']):
    image = _decode_and_warp(record['image'], matrix, spec.input_size)
  else:
    image = geometry.warp_image(np.asarray(record['image']), matrix,
                                spec.input_size)
  crop_joints = geometry.transform_points(matrix, joints)
  crop_visible = visible & inside(crop_joints, spec.input_size)
  if flip:
    crop_joints, crop_visible = geometry.flip_joints(
        crop_joints, crop_visible, np.asarray(spec.flip_permutation))
  targets, weights = heatmaps.encode(crop_joints, crop_visible,
                                     spec.heatmap_size, spec.stride, spec.sigma)
  example = {
      'image': image,
      'targets': targets,
      'target_weights': weights,
      'joints': crop_joints.astype(np.float32),
      'visible': crop_visible,
      'image_joints': joints.astype(np.float32),
      'image_visible': visible,
      'crop_to_image': geometry.invert(matrix),
  }
  if spec.torso_key is not None:
    # One point: the mirror is in the matrix, there is no label to swap.
    example['torso'] = geometry.transform_points(
        matrix, record[spec.torso_key]).astype(np.float32)
  return example


def person_box(spec: CropSpec, person_scale: float) -> tuple[float, float]:
  """(width, height) in image pixels of the crop around a person of
  ``person_scale``: ``spec.box_scale`` * person_scale wide, in the model
  input's aspect. Training, evaluation and prediction all crop this box."""
  side = spec.box_scale * float(person_scale)
  width, height = spec.input_size
  return side, side * height / width


def crop_matrix(record, spec: CropSpec, rotation: float, scale: float,
                flip: bool) -> np.ndarray:
  """[3, 3] image -> input pixels: the person-centred box of ``record``
  (``person_box`` of person_scale / ``scale``) rotated by ``rotation``
  degrees and optionally mirrored."""
  box = person_box(spec, float(record['person_scale']) / scale)
  return geometry.crop_matrix(record[spec.center_key], box, spec.input_size,
                              rotation, flip)


def is_encoded(image) -> bool:
  """Whether a record's 'image' is encoded bytes rather than pixels."""
  return isinstance(image, bytes) or (isinstance(image, np.ndarray)
                                      and image.dtype.kind in 'SO')


def decode_reduction(matrix: np.ndarray) -> int:
  """The largest JPEG DCT reduction (1, 2, 4, 8) with at least one decoded
  pixel per output pixel of ``matrix`` (source -> crop) in every direction."""
  stretch = np.linalg.norm(matrix[:2, :2], ord=2)  # output px per source px
  reduction = 1
  while reduction < 8 and 2 * reduction * stretch <= 1.0:
    reduction *= 2
  return reduction


_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                  4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def decode_image(data, reduction: int = 1) -> np.ndarray:
  """Encoded image bytes -> uint8 [ceil(H / r), ceil(W / r), 3], BGR order.

  A reduction r > 1 is libjpeg's scaled IDCT: decoded pixel i averages source
  pixels [r*i, r*i + r - 1], so it is centred at r*i + (r - 1) / 2.
  """
  buffer = np.frombuffer(data if isinstance(data, bytes) else data.item(),
                         np.uint8)
  image = cv2.imdecode(buffer, _REDUCED_FLAGS[reduction])
  if image is None:
    raise ValueError('cannot decode the record\'s image bytes')
  return image


def _decode_and_warp(data, matrix, size):
  """Decodes (reduced where a JPEG allows) and warps; RGB [H, W, 3]."""
  raw = data if isinstance(data, bytes) else data.item()
  is_jpeg = raw[:2] == b'\xff\xd8'  # Other formats decode at full size.
  reduction = decode_reduction(matrix) if is_jpeg else 1
  image = decode_image(raw, reduction)
  # Decoded pixel i is source pixel r*i + (r - 1) / 2.
  offset = (reduction - 1) / 2
  to_source = geometry.translation(offset, offset) @ geometry.scaling(reduction)
  image = geometry.warp_image(image, matrix @ to_source, size)
  return np.ascontiguousarray(image[..., ::-1])  # BGR -> RGB on the crop.


def inside(points, size):
  """[N] bool: points [N, 2] within an image of ``size`` = (W, H)."""
  width, height = size
  return ((points[:, 0] >= -0.5) & (points[:, 0] <= width - 0.5)
          & (points[:, 1] >= -0.5) & (points[:, 1] <= height - 0.5))


class _Augment(grain.RandomMapTransform):
  """Training transform: random crop geometry from the example's rng
  (`GlobalBatches`)."""

  def __init__(self, spec: CropSpec):
    self._spec = spec

  def random_map(self, element, rng: np.random.Generator):
    return prepare_example(element, self._spec, rng)


class _Centre(grain.MapTransform):
  """Evaluation transform: the plain person-centred crop."""

  def __init__(self, spec: CropSpec):
    self._spec = spec

  def map(self, element):
    return prepare_example(element, self._spec, None)


class GlobalBatches:
  """grain sampler: this process's slice of every global batch.

  Global example g is record ``order[g]`` of a shuffle by ``seed`` that
  changes every epoch, augmented with Philox(seed + g), as grain's
  IndexSampler draws them without sharding (one process reads the batches it
  read before). Global batch s holds examples [s * B, (s + 1) * B); process p
  of P reads [p * b, (p + 1) * b) of it, b = B / P. grain's worker k of w
  batches loader indices k, k + w, k + 2w, ... and the loader returns the
  workers' batches in turn, so loader index i maps to the example that makes
  the n-th batch returned this process's slice of global batch
  ``first_step`` + n, whatever w.
  """

  def __init__(self, num_records: int, global_batch: int, seed: int, *,
               process_index: int = 0, process_count: int = 1,
               worker_count: int = 0, first_step: int = 0):
    if global_batch % process_count:
      raise ValueError(f'global batch {global_batch} does not split over '
                       f'{process_count} processes: expected a multiple')
    if not 0 <= process_index < process_count:
      raise ValueError(f'process_index={process_index} must be in [0, '
                       f'process_count={process_count})')
    if first_step < 0:
      raise ValueError(f'first_step={first_step} must be >= 0')
    # grain compares the repr when an iterator state is restored.
    self._repr = (f'GlobalBatches({num_records=}, {global_batch=}, {seed=}, '
                  f'{process_index=}, {process_count=}, {worker_count=}, '
                  f'{first_step=})')
    self._order = grain.MapDataset.range(num_records).shuffle(seed=seed)
    self._seed = seed
    self._global_batch = global_batch
    self._local_batch = global_batch // process_count
    self._offset = process_index * self._local_batch
    self._workers = max(worker_count, 1)
    self._first_step = first_step

  def __len__(self) -> int:
    return sys.maxsize  # Repeats forever.

  def __repr__(self) -> str:
    return self._repr

  def global_index(self, index: int) -> int:
    """The global example that loader index ``index`` reads."""
    read, worker = divmod(index, self._workers)
    batch = read // self._local_batch * self._workers + worker
    return ((self._first_step + batch) * self._global_batch + self._offset
            + read % self._local_batch)

  def __getitem__(self, index: int) -> grain.RecordMetadata:
    example = self.global_index(index)
    return grain.RecordMetadata(
        index=example, record_key=int(self._order[example]),
        rng=np.random.Generator(np.random.Philox(key=self._seed + example)))


def make_loader(source, spec: CropSpec, batch_size: int, *, train: bool,
                seed: int, worker_count: int = 0, first_step: int = 0,
                shard_by_process: bool = True) -> grain.DataLoader:
  """A grain DataLoader over ``source``.

  Training shuffles and repeats forever, in global batches of ``batch_size``
  times the number of processes (`GlobalBatches`); its first batch is this
  process's slice of global batch ``first_step`` (the step a resumed run
  starts after). Evaluation reads every record once, in order, keeping the
  last partial batch, each process its own shard of the records.

  Args:
    source: a random-access data source of records (len and __getitem__).
    spec: the crop and augmentation specification.
    batch_size: examples per batch on this process.
    train: augment and shuffle, or the plain centred crop in order.
    seed: shuffling and augmentation seed.
    worker_count: grain worker processes (0 = in the main process).
    first_step: training: global batches to skip.
    shard_by_process: each JAX process reads its part of the data; False:
      this process reads everything (the global batch is ``batch_size``).
  """
  processes = ((jax.process_index(), jax.process_count()) if shard_by_process
               else (0, 1))
  if train:
    sampler = GlobalBatches(
        len(source), batch_size * processes[1], seed,
        process_index=processes[0], process_count=processes[1],
        worker_count=worker_count, first_step=first_step)
    shard_options = grain.NoSharding()  # The sampler slices global batches.
  else:
    shard_options = (grain.ShardByJaxProcess(drop_remainder=False)
                     if shard_by_process else grain.NoSharding())
    sampler = grain.IndexSampler(num_records=len(source),
                                 shard_options=shard_options, shuffle=False,
                                 num_epochs=1, seed=seed)
  transform = _Augment(spec) if train else _Centre(spec)
  return grain.DataLoader(
      data_source=source,
      sampler=sampler,
      operations=[transform, grain.Batch(batch_size, drop_remainder=train)],
      worker_count=worker_count,
      shard_options=shard_options,
      read_options=_read_options(source))


def _read_options(source) -> grain.ReadOptions | None:
  """No read-ahead threads for a source in memory (grain's advice), else
  grain's default (16 threads, 500 records ahead: for files).

  grain's read-ahead scans its whole buffer at every record and its threads
  contend for the GIL with the crop: on the cached demo split that cost 11
  ms of CPU per batch of 16 against 1.3 ms for the crops themselves.
  """
  if isinstance(source, datasets.CachedSource):
    return grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
  return None


def crop_spec(config, joint_set) -> CropSpec:
  """The CropSpec of an experiment config (``config.data`` and ``config.model``)."""
  data = config.data
  return CropSpec(
      input_size=tuple(data.input_size),
      stride=config.model.pooling,
      center_key=data.crop_center,
      box_scale=data.box_scale,
      sigma=data.sigma,
      flip_permutation=tuple(int(i) for i in joint_set.flip_permutation),
      rotation_deg=data.rotation_deg,
      scale_range=tuple(data.scale_range),
      flip_probability=data.flip_probability,
      torso_key=(config.model.spatial.torso_key
                 if spatial.is_enabled(config.model) else None))
