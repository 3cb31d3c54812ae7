"""Preemption: SIGTERM or SIGINT end training at a step boundary, checkpointed.

While training, a scheduler's SIGTERM (or a Ctrl-C) only sets a flag. The
loop sees it after the step in flight, saves a checkpoint at that step
(parameters, optimiser, step, PRNG key) and raises Preempted;
launch/train.py then exits with 128 + the signal number, the status a shell
gives a process killed by that signal, and the same command resumes. A second
signal goes to the handler installed before (by default SIGTERM kills the
process and SIGINT raises KeyboardInterrupt), so a stuck save can still be
stopped hard.

Several processes (jax.distributed) must stop at the same step. There JAX's
preemption service, which jax.distributed.initialize starts and which catches
SIGTERM itself, agrees on the step (multihost_utils.
reached_preemption_sync_point); this module then installs no handlers, and
SIGINT keeps its default.
"""

from __future__ import annotations

import signal
import threading

from absl import logging
import jax
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
  """Training stopped by ``signal_number`` after checkpointing ``step``."""

  def __init__(self, step: int, signal_number: int, directory: str):
    name = signal.Signals(signal_number).name
    super().__init__(f'{name}: stopped after step {step}, checkpoint in '
                     f'{directory}; run the same command to resume')
    self.step = step
    self.signal_number = signal_number
    self.exit_code = 128 + signal_number


class StopRequest:
  """Context manager that turns SIGTERM / SIGINT into a stop request.

  Installs its handlers on entry (one process, main thread only: Python
  delivers signals there) and puts the previous ones back on exit.
  """

  def __init__(self):
    self.signal_number: int | None = None
    self._previous = {}

  def __enter__(self) -> StopRequest:
    if jax.process_count() > 1:
      return self  # JAX's preemption service handles SIGTERM.
    if threading.current_thread() is not threading.main_thread():
      logging.warning('training outside the main thread: SIGTERM and SIGINT '
                      'stop it without a checkpoint')
      return self
    for number in SIGNALS:
      self._previous[number] = signal.signal(number, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    self._restore()

  def _restore(self) -> None:
    for number, handler in self._previous.items():
      # None: a handler installed outside Python, which cannot be put back.
      signal.signal(number, signal.SIG_DFL if handler is None else handler)
    self._previous = {}

  def _handle(self, number: int, frame) -> None:
    del frame
    if self.signal_number is not None:
      self._restore()
      signal.raise_signal(number)
      return
    self.signal_number = number
    logging.warning('%s received: stopping after this step with a checkpoint '
                    '(send it again to stop at once, without one)',
                    signal.Signals(number).name)

  def requested(self, step: int) -> bool:
    """Whether to checkpoint and stop after ``step``; every process of a
    multi-process run must call it at every step."""
    if jax.process_count() > 1:
      if multihost_utils.reached_preemption_sync_point(step):
        self.signal_number = signal.SIGTERM
    return self.signal_number is not None
