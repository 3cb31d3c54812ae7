"""Input pipeline: one affine warp for image and joints, flips, determinism, state."""

import threading

import chex
import grain.python as grain
import jax
import numpy as np
import pytest

from cascade_jax import geometry
from cascade_jax import heatmaps
from cascade_jax import joint_sets
from cascade_jax.data import datasets
from cascade_jax.data import pipeline

JOINT_SET = joint_sets.FLIC
IMAGE_SIZE = 96


def _record(seed):
  """An image with a smooth dot at joint 0, so the warped image shows where
  that joint went."""
  rng = np.random.default_rng(seed)
  joints = rng.uniform(30, 66, (JOINT_SET.num_joints, 2))
  return {'image': _dots(joints[:1], IMAGE_SIZE),
          'joints': joints.astype(np.float32),
          'visible': np.ones(JOINT_SET.num_joints, bool),
          'torso_center': np.array([47.5, 47.5], np.float32),
          'person_scale': np.float32(60.0)}


def _dots(points, size, sigma=1.5):
  ys, xs = np.mgrid[0:size, 0:size]
  image = np.zeros((size, size), np.float64)
  for x, y in points:
    image += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
  return np.repeat((255 * image)[..., None], 3, -1).astype(np.uint8)


def _centroid(image):
  image = image.astype(np.float64)
  ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
  return np.array([(xs * image).sum(), (ys * image).sum()]) / image.sum()


def _spec(**overrides):
  fields = dict(input_size=(64, 64), stride=4, center_key='torso_center',
                box_scale=1.0, sigma=1.5,
                flip_permutation=tuple(JOINT_SET.flip_permutation.tolist()))
  fields.update(overrides)
  return pipeline.CropSpec(**fields)


def test_centred_crop_maps_joints_and_targets():
  record = _record(0)
  example = pipeline.prepare_example(record, _spec(), rng=None)
  chex.assert_shape(example['image'], (64, 64, 3))
  chex.assert_shape(example['targets'], (16, 16, JOINT_SET.num_joints))
  # Box of 60 px centred on (47.5, 47.5) onto 64 px: scale 64/60.
  expected = (record['joints'] - 47.5) * 64 / 60 + 31.5
  np.testing.assert_allclose(example['joints'], expected, atol=1e-4)
  decoded, _ = heatmaps.decode(example['targets'], 4)
  assert np.abs(decoded - example['joints']).max() <= 2.0 + 1e-6
  back = geometry.transform_points(example['crop_to_image'], example['joints'])
  np.testing.assert_allclose(back, record['joints'], atol=1e-4)


@pytest.mark.parametrize('seed', range(6))
def test_augmented_image_and_joints_move_together(seed):
  """Render a dot at a joint, augment, find the dot where the joint went."""
  record = _record(seed)
  example = pipeline.prepare_example(record, _spec(),
                                     np.random.default_rng(seed))
  # Joint 0 (l_shoulder) carries the dot; after a flip it is relabelled r_shoulder.
  candidates = example['joints'][[0, JOINT_SET.index('r_shoulder')]]
  found = _centroid(example['image'][..., 0])
  errors = np.linalg.norm(candidates - found, axis=-1)
  assert errors.min() < 0.1, errors


def test_flip_relabels_left_and_right():
  record = _record(3)
  spec = _spec(flip_probability=1.0, rotation_deg=0.0, scale_range=(1.0, 1.0))
  plain = pipeline.prepare_example(record, spec, rng=None)
  flipped = pipeline.prepare_example(record, spec, np.random.default_rng(0))
  left, right = JOINT_SET.index('l_shoulder'), JOINT_SET.index('r_shoulder')
  # The person's left shoulder in the mirror is the mirror of the right one.
  np.testing.assert_allclose(flipped['joints'][left],
                             [63 - plain['joints'][right][0],
                              plain['joints'][right][1]], atol=1e-4)
  nose = JOINT_SET.index('nose')
  np.testing.assert_allclose(flipped['joints'][nose][0],
                             63 - plain['joints'][nose][0], atol=1e-4)


@pytest.mark.parametrize('seed', range(4))
def test_torso_moves_and_mirrors_with_the_joints(seed):
  """The torso is warped with the matrix that warps the joints: after a
  flip it is mirrored like them (one point, so nothing is relabelled)."""
  record = dict(_record(seed), torso_center=np.array([40.0, 55.0], np.float32),
                person_center=np.array([47.5, 47.5], np.float32))
  spec = _spec(center_key='person_center', torso_key='torso_center')
  example = pipeline.prepare_example(record, spec, np.random.default_rng(seed))
  to_input = np.linalg.inv(example['crop_to_image'])
  np.testing.assert_allclose(
      example['torso'], geometry.transform_points(to_input, [40.0, 55.0]),
      atol=1e-4)
  plain = pipeline.prepare_example(record, _spec(
      center_key='person_center', torso_key='torso_center', rotation_deg=0.0,
      scale_range=(1.0, 1.0), flip_probability=1.0), np.random.default_rng(0))
  np.testing.assert_allclose(plain['torso'], [63 - (40 - 47.5) * 64 / 60 - 31.5,
                                              (55 - 47.5) * 64 / 60 + 31.5],
                             atol=1e-4)
  assert 'torso' not in pipeline.prepare_example(record, _spec(), rng=None)


def test_joints_leaving_the_crop_become_invisible():
  record = _record(1)
  record['joints'][2] = [500.0, 10.0]
  example = pipeline.prepare_example(record, _spec(), rng=None)
  assert not example['visible'][2]
  assert example['target_weights'][2] == 0
  assert example['visible'][0]


def test_bad_record_shapes_raise():
  record = _record(0)
  record['visible'] = record['visible'][:3]
  with pytest.raises(ValueError, match='visible'):
    pipeline.prepare_example(record, _spec(), rng=None)


def _batches(loader, count):
  iterator = iter(loader)
  return [next(iterator) for _ in range(count)]


def test_loader_is_deterministic_for_a_seed():
  source = [_record(i) for i in range(12)]
  make = lambda seed: pipeline.make_loader(
      source, _spec(), 4, train=True, seed=seed, shard_by_process=False)
  first, again, other_seed = _batches(make(0), 5), _batches(make(0), 5), \
      _batches(make(1), 5)
  for a, b in zip(first, again):
    chex.assert_trees_all_equal(a, b)
  assert not np.array_equal(first[0]['image'], other_seed[0]['image'])


def _global_batches(monkeypatch, source, processes, workers, first_step=0,
                    count=4):
  """The first ``count`` global batches read by ``processes`` processes of
  ``workers`` grain workers each: their batches concatenated in process
  order (the process index and count that jax would report, patched)."""
  per_process = []
  for index in range(processes):
    monkeypatch.setattr(jax, 'process_index', lambda *_, i=index: i)
    monkeypatch.setattr(jax, 'process_count', lambda *_: processes)
    per_process.append(_batches(pipeline.make_loader(
        source, _spec(), 6 // processes, train=True, seed=3,
        worker_count=workers, first_step=first_step), count))
  return [jax.tree.map(lambda *parts: np.concatenate(parts), *step)
          for step in zip(*per_process)]


@pytest.mark.parametrize('processes, workers', [(2, 0), (3, 0), (1, 2),
                                                (2, 2)])
def test_global_batches_do_not_depend_on_processes_or_workers(
    processes, workers, monkeypatch):
  """Which examples, in which order, with which augmentation: the same
  global batch of every step for 1, 2 or 3 processes and 0 or 2 workers,
  over two epochs (10 records, 6 a step)."""
  source = [_record(i) for i in range(10)]
  one = _global_batches(monkeypatch, source, 1, 0)
  many = _global_batches(monkeypatch, source, processes, workers)
  for want, got in zip(one, many):
    chex.assert_trees_all_equal(got, want)
  # Not one batch repeated: every step reads new examples.
  assert len({b['image'].tobytes() for b in one}) == len(one)


def test_a_run_resumes_at_a_step_on_another_process_count(monkeypatch):
  """first_step=s reads global batches s, s + 1, ... for any process count:
  a run of one process resumes on two, and the other way round."""
  source = [_record(i) for i in range(10)]
  one = _global_batches(monkeypatch, source, 1, 0, count=5)
  for processes in (1, 2):
    resumed = _global_batches(monkeypatch, source, processes, 0,
                              first_step=3, count=2)
    for want, got in zip(one[3:], resumed):
      chex.assert_trees_all_equal(got, want)


def test_one_process_reads_what_grain_index_sampler_read():
  """One process: the batches of grain's own shuffled IndexSampler (and of
  this project before global batches), so one-process runs are unchanged."""
  source = [_record(i) for i in range(10)]
  spec = _spec()
  ours = _batches(pipeline.make_loader(source, spec, 4, train=True, seed=3,
                                       shard_by_process=False), 4)
  grains = _batches(grain.DataLoader(
      data_source=source,
      sampler=grain.IndexSampler(num_records=10, shuffle=True, seed=3,
                                 shard_options=grain.NoSharding()),
      operations=[pipeline._Augment(spec), grain.Batch(4)],
      shard_options=grain.NoSharding()), 4)
  for want, got in zip(grains, ours):
    chex.assert_trees_all_equal(got, want)


@pytest.mark.parametrize('fields, message', [
    (dict(global_batch=6, process_count=4), 'global batch 6 does not split '
     'over 4 processes'),
    (dict(process_index=2, process_count=2), r'process_index=2 must be in '
     r'\[0, process_count=2\)'),
    (dict(first_step=-1), 'first_step=-1 must be >= 0'),
])
def test_global_batches_name_what_does_not_fit(fields, message):
  arguments = {'num_records': 10, 'global_batch': 4, 'seed': 0, **fields}
  with pytest.raises(ValueError, match=message):
    pipeline.GlobalBatches(**arguments)


def test_iterator_state_restores_the_position():
  source = [_record(i) for i in range(10)]
  loader = pipeline.make_loader(source, _spec(), 3, train=True, seed=5,
                                shard_by_process=False)
  iterator = iter(loader)
  for _ in range(4):
    next(iterator)
  state = iterator.get_state()
  expected = [next(iterator) for _ in range(3)]
  resumed = iter(loader)
  resumed.set_state(state)
  for want in expected:
    chex.assert_trees_all_equal(next(resumed), want)


def _read_threads():
  return {t for t in threading.enumerate()
          if t.name.startswith('grain-prefetch')}


def test_a_source_in_memory_is_read_without_threads_to_the_same_batches():
  source = [_record(i) for i in range(8)]
  make = lambda s: iter(pipeline.make_loader(s, _spec(), 4, train=True,
                                             seed=3, shard_by_process=False))
  before = _read_threads()
  cached_iterator = make(datasets.CachedSource(source))
  cached = [next(cached_iterator) for _ in range(3)]
  assert not _read_threads() - before
  plain_iterator = make(source)
  plain = [next(plain_iterator) for _ in range(3)]
  assert _read_threads() - before  # Read ahead in grain's threads.
  for a, b in zip(cached, plain):
    chex.assert_trees_all_equal(a, b)


def test_eval_loader_reads_every_record_once_in_order():
  source = [_record(i) for i in range(7)]
  loader = pipeline.make_loader(source, _spec(), 3, train=False, seed=0,
                                shard_by_process=False)
  batches = list(loader)
  assert [len(b['image']) for b in batches] == [3, 3, 1]
  gt = np.concatenate([b['image_joints'] for b in batches])
  np.testing.assert_allclose(gt, np.stack([r['joints'] for r in source]))
