"""Tests of the throughput benchmark and of the pipeline's reduced JPEG decode."""

import numpy as np
import pytest

from cascade_jax import geometry
from cascade_jax import joint_sets
from cascade_jax.data import pipeline
from cascade_jax.data import throughput

SPEC = pipeline.CropSpec(
    input_size=(64, 64), stride=8, center_key='person_center', box_scale=1.25,
    sigma=1.5, flip_permutation=tuple(joint_sets.MPII.flip_permutation))


@pytest.fixture(scope='module')
def builder(tmp_path_factory):
  return throughput.build_benchmark_dataset(
      str(tmp_path_factory.mktemp('bench')), num_images=4,
      image_size=(160, 96))


def test_benchmark_dataset_stores_jpeg_bytes_like_mpii(builder):
  encoded = throughput.benchmark_source(builder)
  decoded = throughput.benchmark_source(builder, encoded=False)
  assert len(encoded) == 4
  assert bytes(encoded[0]['image'][:2]) == b'\xff\xd8'
  assert decoded[0]['image'].shape == (96, 160, 3)
  assert decoded[0]['joints'].shape == (16, 2)
  assert decoded[0]['person_scale'] > 0


@pytest.mark.parametrize('worker_count', [0, 1])
def test_measure_counts_images(builder, worker_count):
  result = throughput.measure(throughput.benchmark_source(builder), SPEC,
                              batch_size=2, worker_count=worker_count,
                              num_batches=3, warmup_batches=1)
  assert result['images'] == 6 and result['worker_count'] == worker_count
  assert result['images_per_s'] > 0
  assert result['images_per_s_per_process'] == pytest.approx(
      result['images_per_s'] / max(worker_count, 1))


@pytest.mark.parametrize('encoded', [True, False])
def test_run_benchmark_reports_stages_and_load(builder, encoded):
  result = throughput.run_benchmark(
      throughput.benchmark_source(builder, encoded=encoded), SPEC, [0],
      batch_size=2, num_batches=1, warmup_batches=0, profile_examples=3)
  stages = result['stages_ms']
  assert set(stages) == {'read', 'decode', 'prepare', 'targets', 'warp',
                         'total'}
  assert stages['read'] > 0 and stages['targets'] > 0
  assert (stages['decode'] > 0) == encoded
  assert len(result['runs']) == 1 and len(result['load_before']) == 3
  assert '1 min' in throughput.format_table(result)


@pytest.mark.parametrize('stretch, reduction', [
    (1.0, 1), (0.6, 1), (0.5, 2), (0.3, 2), (0.25, 4), (0.13, 4), (0.125, 8),
    (0.01, 8)])
def test_decode_reduction_keeps_a_pixel_per_output_pixel(stretch, reduction):
  # Rotation does not change the scale; the more stretched axis (x) decides.
  matrix = geometry.crop_matrix((50, 50), (64 / stretch, 128 / stretch),
                                (64, 64), rotation_deg=17.0)
  assert pipeline.decode_reduction(matrix) == reduction


def test_reduced_decode_keeps_the_geometry():
  # A blob at a sub-pixel position in a 1280x720 JPEG, cropped 4.9x smaller:
  # decoded at 1/4 scale it must land where the warp matrix sends it.
  height, width, point = 720, 1280, np.array([700.3, 300.7])
  ys, xs = np.mgrid[:height, :width]
  blob = 255 * np.exp(-((xs - point[0])**2 + (ys - point[1])**2) / (2 * 8.0**2))
  image = np.repeat(blob[..., None], 3, axis=-1).astype(np.uint8)
  record = {'joints': np.zeros((16, 2)), 'visible': np.zeros(16, bool),
            'person_center': np.array([640.0, 360.0]), 'person_scale': 1000.0}
  spec = pipeline.CropSpec(
      input_size=(256, 256), stride=8, center_key='person_center',
      box_scale=1.25, sigma=1.5, flip_permutation=SPEC.flip_permutation)
  jpeg = throughput.encode_jpeg(image, quality=95)
  from_bytes = pipeline.prepare_example(dict(record, image=jpeg), spec, None)
  from_pixels = pipeline.prepare_example(dict(record, image=image), spec, None)
  matrix = np.linalg.inv(from_bytes['crop_to_image'])
  assert pipeline.decode_reduction(matrix) == 4
  expected = geometry.transform_points(matrix, point)
  for example in (from_bytes, from_pixels):
    weights = example['image'][..., 0].astype(np.float64)
    weights = np.where(weights > 10, weights, 0)
    oy, ox = np.mgrid[:256, :256]
    centroid = np.array([(ox * weights).sum(), (oy * weights).sum()])
    np.testing.assert_allclose(centroid / weights.sum(), expected, atol=0.1)
  # The 1/4 DCT decode averages 4x4 pixels; the full decode's bilinear warp
  # point-samples: the peak differs a little, the images barely.
  difference = np.abs(from_bytes['image'].astype(int) - from_pixels['image'])
  assert difference.mean() < 0.5 and difference.max() <= 20
