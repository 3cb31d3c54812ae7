"""Training batches read ahead in a background thread, checkpointably.

`Prefetcher` wraps a grain iterator (`pipeline.make_loader`): a thread takes
the next batches from it while the training step runs, so the loop's
``next()`` finds a batch ready instead of waiting for the worker processes'
output to be fetched and unpickled. The thread runs ahead of the loop, so the
state that a checkpoint saves (``get_state``, which grain's Orbax handler
calls) is the wrapped iterator's state after the last batch the loop TOOK:
each prefetched batch carries a snapshot of it. ``set_state`` stops the
thread, drops what it had read ahead and restores the wrapped iterator, so a
resumed run sees exactly the batches an uninterrupted one would have. Each
JAX process wraps its own iterator (its slices of the global batches).
"""

from __future__ import annotations

import queue
import threading

# Tags of the items the producer thread queues.
_BATCH, _END, _ERROR = 'batch', 'end', 'error'


class Prefetcher:
  """An iterator over ``iterator``'s batches, read up to ``buffer_size``
  ahead by a thread, with grain's checkpoint interface (``get_state``,
  ``set_state``, ``start_prefetch``).

  The thread starts at the first ``next()`` (or ``start_prefetch``), so a
  state restored right after construction reads nothing twice. An exception
  in the thread is raised by the ``next()`` that reaches it, with its own
  type and message. ``close`` (or leaving a ``with`` block) stops the thread.
  """

  def __init__(self, iterator, buffer_size: int = 2):
    self._thread = self._queue = self._stop = None
    if buffer_size < 1:
      raise ValueError(f'prefetch buffer_size must be >= 1, got {buffer_size}')
    self._iterator = iterator
    self._buffer_size = buffer_size
    self._state = iterator.get_state()
    # The wrapped iterator ran past self._state: rewind before reading on.
    self._rewind = False
    self._finished = None  # The _END or _ERROR item once the thread met it.

  def __iter__(self):
    return self

  def __next__(self):
    if self._finished is None:
      self.start_prefetch()
      tag, value, state = self._queue.get()
      if tag == _BATCH:
        self._state = state
        return value
      self._finished = (tag, value)
    tag, value = self._finished
    if tag == _ERROR:
      raise value
    raise StopIteration

  def get_state(self):
    """The wrapped iterator's state after the last batch ``next`` returned."""
    return self._state

  def set_state(self, state) -> None:
    """Drops the batches read ahead and moves the wrapped iterator to
    ``state``; the next batch is the one that followed it."""
    self.close()
    self._iterator.set_state(state)
    self._state = state
    self._rewind = False
    self._finished = None

  def start_prefetch(self) -> None:
    """Starts the thread if it is not running (idempotent)."""
    if self._thread is not None or self._finished is not None:
      return
    if self._rewind:
      self._iterator.set_state(self._state)
      self._rewind = False
    self._queue = queue.Queue(self._buffer_size)
    self._stop = threading.Event()
    # The thread holds the iterator and its own queue, not this object, so
    # an unreferenced Prefetcher is collected (and closes) as usual.
    self._thread = threading.Thread(
        target=_produce, args=(self._iterator, self._queue, self._stop),
        name='Prefetcher', daemon=True)
    self._thread.start()

  def close(self) -> None:
    """Stops the thread and drops the batches it read ahead (idempotent);
    ``next`` starts it again from the last batch taken."""
    if self._thread is None:
      return
    self._stop.set()
    while self._thread.is_alive():
      _drain(self._queue)  # Frees a thread blocked on a full queue.
      self._thread.join(0.01)
    self._thread = self._queue = self._stop = None
    self._rewind = True

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()

  def __del__(self):
    self.close()


def _produce(iterator, out: queue.Queue, stop: threading.Event) -> None:
  """The thread: queues (tag, batch or exception, state) until stopped."""
  try:
    while not stop.is_set():
      batch = next(iterator)
      out.put((_BATCH, batch, iterator.get_state()))
  except StopIteration:
    out.put((_END, None, None))
  except Exception as error:  # pylint: disable=broad-except
    out.put((_ERROR, error, None))


def _drain(items: queue.Queue) -> None:
  while True:
    try:
      items.get_nowait()
    except queue.Empty:
      return
