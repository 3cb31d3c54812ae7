"""Prefetcher: order, checkpoint state of the batches taken, restore, errors,
shutdown; and through grain's Orbax handler over a real loader."""

import json
import threading
import time

import chex
import grain.checkpoint as grain_checkpoint
import numpy as np
import pytest

from cascade_jax import joint_sets
from cascade_jax.data import pipeline
from cascade_jax.data import prefetch


class Counter:
  """Batches 0, 1, 2, ... with grain's get_state / set_state; raises
  ValueError at ``fail_at``, stops at ``stop``."""

  def __init__(self, stop=None, fail_at=None):
    self.position = 0
    self._stop, self._fail_at = stop, fail_at

  def __next__(self):
    if self.position == self._fail_at:
      raise ValueError(f'cannot read record {self.position}')
    if self.position == self._stop:
      raise StopIteration
    self.position += 1
    return {'value': np.array([self.position - 1])}

  def get_state(self):
    return json.dumps({'position': self.position}).encode()

  def set_state(self, state):
    self.position = json.loads(state)['position']


def _values(iterator, count):
  return [int(next(iterator)['value'][0]) for _ in range(count)]


def _wait_until(condition):
  """Polls ``condition`` until true (the thread runs at its own pace)."""
  deadline = time.monotonic() + 30
  while not condition():
    assert time.monotonic() < deadline, 'the prefetch thread never got there'
    time.sleep(0.001)


def _prefetch_threads():
  return [t for t in threading.enumerate() if t.name == 'Prefetcher']


def test_batches_come_in_order_and_stop_at_the_end():
  with prefetch.Prefetcher(Counter(stop=7), buffer_size=3) as batches:
    assert [int(b['value'][0]) for b in batches] == list(range(7))
    with pytest.raises(StopIteration):
      next(batches)


def test_reads_at_most_the_buffer_ahead():
  source = Counter()
  with prefetch.Prefetcher(source, buffer_size=2) as batches:
    assert _values(batches, 3) == [0, 1, 2]
    # Two queued and one waiting to be queued.
    _wait_until(lambda: source.position == 3 + 2 + 1)
    time.sleep(0.05)
    assert source.position == 6


def test_state_is_that_of_the_last_batch_taken():
  source = Counter()
  with prefetch.Prefetcher(source, buffer_size=4) as batches:
    assert batches.get_state() == Counter().get_state()
    _values(batches, 3)
    _wait_until(lambda: source.position > 3)  # The thread ran ahead.
    assert json.loads(batches.get_state()) == {'position': 3}


def test_restored_state_continues_as_the_uninterrupted_run():
  with prefetch.Prefetcher(Counter(), buffer_size=3) as batches:
    _values(batches, 4)
    state = batches.get_state()
    uninterrupted = _values(batches, 5)
  with prefetch.Prefetcher(Counter(), buffer_size=3) as resumed:
    resumed.set_state(state)
    assert _values(resumed, 5) == uninterrupted == [4, 5, 6, 7, 8]
    resumed.set_state(state)  # While the thread runs: drops its read-ahead.
    assert _values(resumed, 2) == [4, 5]


def test_close_stops_the_thread_and_next_resumes_after_the_last_taken():
  before = len(_prefetch_threads())
  batches = prefetch.Prefetcher(Counter(), buffer_size=2)
  assert _values(batches, 2) == [0, 1]
  assert len(_prefetch_threads()) == before + 1
  batches.close()
  assert len(_prefetch_threads()) == before
  assert _values(batches, 2) == [2, 3]
  del batches  # Collected: the thread stops too.
  _wait_until(lambda: len(_prefetch_threads()) == before)


def test_an_error_in_the_thread_reaches_next_with_its_message():
  with prefetch.Prefetcher(Counter(fail_at=2)) as batches:
    assert _values(batches, 2) == [0, 1]
    for _ in range(2):  # And again on the next call.
      with pytest.raises(ValueError, match='cannot read record 2'):
        next(batches)


def test_buffer_size_must_be_positive():
  with pytest.raises(ValueError, match='buffer_size must be >= 1, got 0'):
    prefetch.Prefetcher(Counter(), buffer_size=0)


def _record(seed):
  rng = np.random.default_rng(seed)
  num_joints = joint_sets.FLIC.num_joints
  return {'image': rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
          'joints': rng.uniform(8, 24, (num_joints, 2)).astype(np.float32),
          'visible': np.ones(num_joints, bool),
          'torso_center': np.array([15.5, 15.5], np.float32),
          'person_scale': np.float32(24.0)}


@pytest.mark.parametrize('workers', [0, 1])
def test_grain_checkpoint_of_a_loader_resumes_at_the_batch_taken(tmp_path,
                                                                 workers):
  source = [_record(i) for i in range(10)]
  spec = pipeline.CropSpec(
      input_size=(16, 16), stride=4, center_key='torso_center', box_scale=1.0,
      sigma=1.5,
      flip_permutation=tuple(joint_sets.FLIC.flip_permutation.tolist()))
  loader = pipeline.make_loader(source, spec, 3, train=True, seed=2,
                                worker_count=workers, shard_by_process=False)
  handler = grain_checkpoint.CheckpointHandler()
  with prefetch.Prefetcher(iter(loader)) as batches:
    for _ in range(4):  # Past the first epoch of 3 batches.
      next(batches)
    handler.save(tmp_path, args=grain_checkpoint.CheckpointSave(batches))
    expected = [next(batches) for _ in range(3)]
  with prefetch.Prefetcher(iter(loader)) as resumed:
    handler.restore(tmp_path, args=grain_checkpoint.CheckpointRestore(resumed))
    for want in expected:
      chex.assert_trees_all_equal(next(resumed), want)
