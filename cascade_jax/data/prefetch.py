"""Training batches read ahead in a background thread.

`Prefetcher` wraps a grain iterator (`pipeline.make_loader`): a thread takes
the next batches from it while the training step runs, so the loop's
``next()`` finds a batch ready instead of waiting for the worker processes'
output to be fetched and unpickled. Nothing of it is checkpointed: a resumed
run positions its loader from the restored step (`make_loader(first_step=)`),
so the batches read ahead and dropped at a stop are read again. Each JAX
process wraps its own iterator (its slices of the global batches).
"""

from __future__ import annotations

import queue
import threading

# Tags of the items the producer thread queues.
_BATCH, _END, _ERROR = 'batch', 'end', 'error'


class Prefetcher:
  """An iterator over ``iterator``'s batches, read up to ``buffer_size``
  ahead by a thread.

  The thread starts at the first ``next()``. An exception in the thread is
  raised by the ``next()`` that reaches it, with its own type and message.
  ``close`` (or leaving a ``with`` block) stops the thread and drops what it
  had read ahead; ``next()`` after it is an error.
  """

  def __init__(self, iterator, buffer_size: int = 2):
    self._thread = self._queue = self._stop = None
    if buffer_size < 1:
      raise ValueError(f'prefetch buffer_size must be >= 1, got {buffer_size}')
    self._iterator = iterator
    self._buffer_size = buffer_size
    self._closed = False
    self._finished = None  # The _END or _ERROR item once the thread met it.

  def __iter__(self):
    return self

  def __next__(self):
    if self._closed:
      raise RuntimeError('next() on a closed Prefetcher: the batches it had '
                         'read ahead were dropped')
    if self._finished is None:
      self._start()
      tag, value = self._queue.get()
      if tag == _BATCH:
        return value
      self._finished = (tag, value)
    tag, value = self._finished
    if tag == _ERROR:
      raise value
    raise StopIteration

  def _start(self) -> None:
    """Starts the thread if it is not running (idempotent)."""
    if self._thread is not None:
      return
    self._queue = queue.Queue(self._buffer_size)
    self._stop = threading.Event()
    # The thread holds the iterator and its own queue, not this object, so
    # an unreferenced Prefetcher is collected (and closes) as usual.
    self._thread = threading.Thread(
        target=_produce, args=(self._iterator, self._queue, self._stop),
        name='Prefetcher', daemon=True)
    self._thread.start()

  def close(self) -> None:
    """Stops the thread and drops the batches it read ahead (idempotent)."""
    self._closed = True
    if self._thread is None:
      return
    self._stop.set()
    while self._thread.is_alive():
      _drain(self._queue)  # Frees a thread blocked on a full queue.
      self._thread.join(0.01)
    self._thread = self._queue = self._stop = None

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()

  def __del__(self):
    self.close()


def _produce(iterator, out: queue.Queue, stop: threading.Event) -> None:
  """The thread: queues (tag, batch or exception) until stopped."""
  try:
    while not stop.is_set():
      out.put((_BATCH, next(iterator)))
  except StopIteration:
    out.put((_END, None))
  except Exception as error:  # pylint: disable=broad-except
    out.put((_ERROR, error))


def _drain(items: queue.Queue) -> None:
  while True:
    try:
      items.get_nowait()
    except queue.Empty:
      return
