"""Prefetcher: order, read-ahead bound, errors, shutdown."""

import threading
import time

import numpy as np
import pytest

from cascade_jax.data import prefetch


class Counter:
  """Batches 0, 1, 2, ...; raises ValueError at ``fail_at``, stops at
  ``stop``."""

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


def test_close_stops_the_thread_and_next_after_it_is_an_error():
  before = len(_prefetch_threads())
  batches = prefetch.Prefetcher(Counter(), buffer_size=2)
  assert _values(batches, 2) == [0, 1]
  assert len(_prefetch_threads()) == before + 1
  batches.close()
  assert len(_prefetch_threads()) == before
  with pytest.raises(RuntimeError, match='closed Prefetcher'):
    next(batches)
  batches.close()  # Idempotent.
  collected = prefetch.Prefetcher(Counter(), buffer_size=2)
  assert _values(collected, 1) == [0]
  del collected  # Collected: the thread stops too.
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
