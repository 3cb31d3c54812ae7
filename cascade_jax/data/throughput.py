"""Input-pipeline throughput: images/s of the real-data path, and where the time goes.

The real-data path: JPEG bytes read from an array_record TFDS source -> decode
-> person-centred crop with augmentation (one warp) -> Gaussian targets ->
batch, in grain worker processes (`pipeline.make_loader`).

`build_benchmark_dataset` writes an MPII-shaped dataset of realistic size with
the MPII builder's features and `mpii.make_record` (so records are stored
exactly as the real ones): 1280x720 JPEGs (quality 90, smooth background,
texture, shapes and sensor noise: about 200 KB each) and one person per image
whose height (`person_scale`) follows the MPII validation split (median
551 px, 5-95% 229-1372 px). `measure` times a loader over any source;
`profile_stages` splits the per-example cost in the main process.

  builder = build_benchmark_dataset('/tmp/bench', num_images=200)
  source = benchmark_source(builder)        # image field left encoded
  measure(source, spec, batch_size=32, worker_count=2, num_batches=20)
"""

from __future__ import annotations

import os
import time

import cv2
import numpy as np
import tensorflow_datasets as tfds

from cascade_jax import heatmaps
from cascade_jax.data import pipeline
from cascade_jax.data.mpii import mpii

# MPII validation persons (Tompson et al. split): 200 * scale has median 551 px
# and 5% / 95% quantiles 229 / 1372 px: a log-normal with sigma 0.54.
PERSON_SCALE_MEDIAN = 551.0
PERSON_SCALE_LOG_SIGMA = 0.54


def benchmark_image(rng: np.random.Generator, size=(1280, 720),
                    noise: float = 4.0) -> np.ndarray:
  """A photo-like uint8 [H, W, 3] image of ``size`` = (W, H).

  Smooth colour field + mid-frequency texture + 40 filled shapes and strokes,
  blurred, plus sensor noise: JPEG sizes and decode times near real photos
  (a random-noise image would be 5x larger and decode far slower).
  """
  width, height = size
  image = cv2.resize(rng.uniform(0, 255, (9, 16, 3)).astype(np.float32),
                     (width, height), interpolation=cv2.INTER_CUBIC)
  image += cv2.resize(
      rng.normal(0, 25, (height // 8, width // 8, 3)).astype(np.float32),
      (width, height), interpolation=cv2.INTER_LINEAR)
  for _ in range(40):
    colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
    x, y = int(rng.uniform(0, width)), int(rng.uniform(0, height))
    kind = rng.integers(3)
    if kind == 0:
      cv2.rectangle(image, (x, y), (x + int(rng.uniform(10, 300)),
                                    y + int(rng.uniform(10, 300))), colour, -1)
    elif kind == 1:
      cv2.ellipse(image, (x, y), (int(rng.uniform(5, 150)),
                                  int(rng.uniform(5, 150))),
                  float(rng.uniform(0, 180)), 0, 360, colour, -1)
    else:
      cv2.line(image, (x, y), (int(rng.uniform(0, width)),
                               int(rng.uniform(0, height))), colour,
               int(rng.integers(2, 25)))
  image = cv2.GaussianBlur(image, (0, 0), 1.0)
  image += rng.normal(0, noise, image.shape).astype(np.float32)
  return np.clip(image, 0, 255).astype(np.uint8)


def encode_jpeg(image: np.ndarray, quality: int = 90,
                progressive: bool = False) -> bytes:
  """JPEG bytes of an RGB uint8 image (baseline unless ``progressive``)."""
  ok, data = cv2.imencode('.jpg', np.ascontiguousarray(image[..., ::-1]),
                          [cv2.IMWRITE_JPEG_QUALITY, quality,
                           cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])
  if not ok:
    raise RuntimeError('cv2.imencode failed to write a JPEG')
  return data.tobytes()


def benchmark_release(num_images: int, size=(1280, 720),
                      seed: int = 0) -> mpii.MpiiRelease:
  """An MpiiRelease of one labelled person per image, MPII-like sizes."""
  rng = np.random.default_rng(seed)
  width, height = size
  persons = []
  for _ in range(num_images):
    scale = float(np.clip(PERSON_SCALE_MEDIAN * np.exp(
        rng.normal(0, PERSON_SCALE_LOG_SIGMA)), 150, 1500))
    center = rng.uniform([0.2 * width, 0.2 * height],
                         [0.8 * width, 0.8 * height]).astype(np.float32)
    joints = (center + rng.uniform(-0.4, 0.4, (mpii.NUM_JOINTS, 2)) * scale)
    visible = rng.random(mpii.NUM_JOINTS) < 0.9
    persons.append([mpii.MpiiPerson(
        joints=np.where(visible[:, None], joints, 0).astype(np.float32),
        visible=visible, occluded=np.zeros(mpii.NUM_JOINTS, bool),
        head_box=np.zeros(4, np.float32), center=center,
        scale=scale / mpii.SCALE_UNIT)])
  return mpii.MpiiRelease(
      image_names=[f'{i:06d}.jpg' for i in range(num_images)],
      is_train=np.ones(num_images, bool), persons=persons)


class MpiiBenchmark(mpii.MpiiPose):
  """MPII's features and records over generated images; one 'train' split."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Throughput benchmark data.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = None

  def __init__(self, *, num_images: int = 200, image_size=(1280, 720),
               quality: int = 90, progressive: bool = False, seed: int = 0,
               **kwargs):
    self._settings = (num_images, tuple(image_size), quality, progressive,
                      seed)
    super().__init__(**kwargs)

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'train': self._generate_benchmark()}

  def _generate_benchmark(self):
    num_images, size, quality, progressive, seed = self._settings
    release = benchmark_release(num_images, size, seed)
    for index in range(num_images):
      rng = np.random.default_rng([seed, index])
      data = encode_jpeg(benchmark_image(rng, size), quality, progressive)
      yield index, mpii.make_record(release, index, 0, data)


def build_benchmark_dataset(data_dir: str, num_images: int = 200,
                            image_size=(1280, 720), quality: int = 90,
                            progressive: bool = False,
                            seed: int = 0) -> MpiiBenchmark:
  """Builds (once per settings, under ``data_dir``) and returns the builder."""
  width, height = image_size
  folder = (f'{data_dir}/n{num_images}_{width}x{height}_q{quality}'
            f'{"_progressive" if progressive else ""}_s{seed}')
  builder = MpiiBenchmark(num_images=num_images, image_size=image_size,
                          quality=quality, progressive=progressive, seed=seed,
                          data_dir=folder)
  builder.download_and_prepare()
  return builder


def benchmark_source(builder, split: str = 'train', encoded: bool = True):
  """The split as a data source; ``encoded`` leaves 'image' as JPEG bytes,
  which `pipeline.prepare_example` decodes (at a reduced DCT scale)."""
  decoders = {'image': tfds.decode.SkipDecoding()} if encoded else None
  return builder.as_data_source(split, decoders=decoders)


def measure(source, spec: pipeline.CropSpec, batch_size: int,
            worker_count: int, num_batches: int, warmup_batches: int = 2,
            seed: int = 0) -> dict:
  """Training-loader throughput over ``source``.

  The first ``warmup_batches`` (worker start-up, first reads) are not timed.

  Returns:
    {'worker_count', 'batch_size', 'num_batches', 'images', 'seconds',
     'images_per_s', 'images_per_s_per_process'}; per process divides by the
    worker count, or by 1 when the main process does the work (0 workers).
  """
  loader = pipeline.make_loader(source, spec, batch_size, train=True,
                                seed=seed, worker_count=worker_count,
                                shard_by_process=False)
  iterator = iter(loader)
  for _ in range(warmup_batches):
    next(iterator)
  start = time.perf_counter()
  images = 0
  for _ in range(num_batches):
    images += len(next(iterator)['image'])
  seconds = time.perf_counter() - start
  rate = images / seconds
  return {'worker_count': worker_count, 'batch_size': batch_size,
          'num_batches': num_batches, 'images': images, 'seconds': seconds,
          'images_per_s': rate,
          'images_per_s_per_process': rate / max(worker_count, 1)}


def profile_stages(source, spec: pipeline.CropSpec, num_examples: int,
                   seed: int = 0) -> dict:
  """Mean milliseconds per example of each stage, in this process.

  'read': source[i] (array_record read, feature parsing, and the image decode
  when the source decodes); 'decode': `pipeline.decode_image` of encoded
  bytes at the reduction `prepare_example` picks (0 for a decoding source);
  'prepare': `prepare_example` (decode of bytes, warp, joints, targets);
  'targets': `heatmaps.encode` alone; 'warp' = prepare - decode - targets
  (the warp, joint transforms and, for a decoding source, nothing else).
  """
  rng = np.random.default_rng(seed)
  totals = dict.fromkeys(('read', 'decode', 'prepare', 'targets'), 0.0)
  for k in range(num_examples):
    start = time.perf_counter()
    record = source[k % len(source)]
    totals['read'] += time.perf_counter() - start
    start = time.perf_counter()
    example = pipeline.prepare_example(record, spec, rng)
    totals['prepare'] += time.perf_counter() - start
    if pipeline.is_encoded(record['image']):
      matrix = np.linalg.inv(example['crop_to_image'])
      reduction = pipeline.decode_reduction(matrix)
      start = time.perf_counter()
      pipeline.decode_image(record['image'], reduction)
      totals['decode'] += time.perf_counter() - start
    start = time.perf_counter()
    heatmaps.encode(example['joints'], example['visible'], spec.heatmap_size,
                    spec.stride, spec.sigma)
    totals['targets'] += time.perf_counter() - start
  ms = {name: 1e3 * value / num_examples for name, value in totals.items()}
  ms['warp'] = ms['prepare'] - ms['decode'] - ms['targets']
  ms['total'] = ms['read'] + ms['prepare']
  return ms


def run_benchmark(source, spec: pipeline.CropSpec, worker_counts, *,
                  batch_size: int, num_batches: int, warmup_batches: int = 2,
                  profile_examples: int = 50, seed: int = 0) -> dict:
  """`measure` for each worker count and `profile_stages`, with the machine's
  load (os.getloadavg before and after) so that figures can be judged."""
  load_before = os.getloadavg()
  runs = [measure(source, spec, batch_size, count, num_batches,
                  warmup_batches, seed) for count in worker_counts]
  stages = (profile_stages(source, spec, profile_examples, seed)
            if profile_examples else {})
  return {'cpu_count': os.cpu_count(), 'load_before': list(load_before),
          'load_after': list(os.getloadavg()), 'runs': runs,
          'stages_ms': stages}


def format_table(result: dict) -> str:
  """The runs and the stage split as a plain-text table."""
  lines = [f'{"workers":>7} {"batch":>5} {"images":>6} {"seconds":>7} '
           f'{"images/s":>8} {"per process":>11}']
  for run in result['runs']:
    lines.append(f'{run["worker_count"]:>7} {run["batch_size"]:>5} '
                 f'{run["images"]:>6} {run["seconds"]:>7.2f} '
                 f'{run["images_per_s"]:>8.1f} '
                 f'{run["images_per_s_per_process"]:>11.1f}')
  if result['stages_ms']:
    lines.append('ms per example (main process): ' + ', '.join(
        f'{name} {value:.2f}' for name, value in result['stages_ms'].items()))
  lines.append(f'cpus {result["cpu_count"]}, load average before '
               f'{result["load_before"][0]:.2f}, after '
               f'{result["load_after"][0]:.2f} (1 min)')
  return '\n'.join(lines)
