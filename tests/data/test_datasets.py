"""Tests of cascade_jax/data/datasets.py: the synthetic split cache, and
the examples two splits share."""

import numpy as np
import pytest

from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from configs import synthetic


class _CountingSource:
  """Records {'image': [2, 2, 3], 'index': ...}; counts reads per index."""

  def __init__(self, size):
    self.reads = [0] * size

  def __len__(self):
    return len(self.reads)

  def __getitem__(self, index):
    self.reads[index] += 1
    return {'image': np.full((2, 2, 3), index, np.uint8),
            'index': np.int64(index)}


def test_cached_source_reads_each_record_once():
  underlying = _CountingSource(3)
  cached = datasets.CachedSource(underlying)
  assert len(cached) == 3
  for _ in range(2):
    for index in (2, 0, 1):
      assert cached[index]['image'][0, 0, 0] == index
  assert underlying.reads == [1, 1, 1]


def test_cached_records_are_read_only():
  cached = datasets.CachedSource(_CountingSource(1))
  with pytest.raises(ValueError, match='read-only'):
    cached[0]['image'][0, 0, 0] = 7


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
  config = synthetic.get_config()
  config.data.data_dir = str(tmp_path_factory.mktemp('tfds'))
  config.data.image_size = (48, 48)
  config.data.input_size = (32, 32)
  config.data.num_train = 6
  config.data.num_test = 2
  return config


def test_small_synthetic_splits_are_cached(tiny_data, monkeypatch):
  source, _ = datasets.load_split(tiny_data.data, 'train')
  assert isinstance(source, datasets.CachedSource)
  monkeypatch.setattr(datasets, 'MAX_CACHED_BYTES', 6 * 48 * 48 * 3 - 1)
  source, _ = datasets.load_split(tiny_data.data, 'train')
  assert not isinstance(source, datasets.CachedSource)


def test_cache_leaves_training_batches_unchanged(tiny_data, monkeypatch):
  cached, joint_set = datasets.load_split(tiny_data.data, 'train')
  monkeypatch.setattr(datasets, 'MAX_CACHED_BYTES', 0)
  plain, _ = datasets.load_split(tiny_data.data, 'train')
  spec = pipeline.crop_spec(tiny_data, joint_set)

  def batches(source):  # Two epochs: the second reads from the cache.
    loader = pipeline.make_loader(source, spec, 3, train=True, seed=0,
                                  worker_count=0)
    iterator = iter(loader)
    return [next(iterator) for _ in range(4)]

  for with_cache, without in zip(batches(cached), batches(plain)):
    for key in without:
      np.testing.assert_array_equal(with_cache[key], without[key])


@pytest.mark.parametrize('split_a, split_b, expected', [
    ('train[:2]', 'train[2:]', 0),
    ('train', 'train[:2]', 2),
    ('train[1:5]', 'train[3:]', 2),        # examples 3 and 4
    ('train[50%:]', 'train[-4:]', 3),      # 3..5 and 2..5 of 6
    ('train[-1:]', 'train[:-1]', 0),
    ('train+test', 'test[1:]', 1),
    ('train[:2]+test', 'train[1:]+test[:1]', 2),  # train 1, test 0
    ('test', 'train', 0),                  # same indices, other split
])
def test_shared_examples_of_two_splits(tiny_data, split_a, split_b, expected):
  # 6 training and 2 test examples; counts worked out by hand.
  assert datasets.shared_examples(tiny_data.data, split_a, split_b) == expected
  assert datasets.shared_examples(tiny_data.data, split_b, split_a) == expected
