"""Training progress: a live line on a terminal, periodic log lines, TensorBoard.

Device metrics are fetched only at logging steps, so the host does not wait on
every step. With several processes only process 0 reports: the metrics are
already averaged over every device, so the others would repeat its figures.
"""

from __future__ import annotations

import logging as std_logging
import sys
import time

from absl import logging
import jax
import numpy as np
from tensorboardX import SummaryWriter


# Libraries whose INFO lines (every checkpoint file renamed, every split
# read) would bury the training log; their warnings and errors still show.
_QUIET_LIBRARIES = ('/orbax/', '/tensorflow_datasets/', '/grain/', '/etils/')


class _QuietLibraries(std_logging.Filter):

  def filter(self, record: std_logging.LogRecord) -> bool:
    return (record.levelno >= std_logging.WARNING
            or not any(lib in record.pathname for lib in _QUIET_LIBRARIES))


def quiet_library_logs() -> None:
  """Keeps library INFO chatter out of the log; called by the launchers."""
  handler = logging.get_absl_handler()
  if not any(isinstance(f, _QuietLibraries) for f in handler.filters):
    handler.addFilter(_QuietLibraries())


def format_duration(seconds: float) -> str:
  seconds = int(round(max(seconds, 0)))
  hours, rest = divmod(seconds, 3600)
  minutes, seconds = divmod(rest, 60)
  if hours:
    return f'{hours}h{minutes:02d}m'
  return f'{minutes}m{seconds:02d}s' if minutes else f'{seconds}s'


class Progress:
  """Reports step, loss, images/s and ETA every ``log_every`` steps."""

  def __init__(self, total_steps: int, start_step: int, global_batch: int,
               log_every: int, workdir: str | None):
    self._total = total_steps
    self._global_batch = global_batch
    self._log_every = max(1, log_every)
    self._last_step = start_step
    self._last_time = time.perf_counter()
    self._pending = []
    self._is_chief = jax.process_index() == 0
    self._live = self._is_chief and sys.stderr.isatty()
    self._writer = (SummaryWriter(f'{workdir}/tensorboard')
                    if workdir and self._is_chief else None)

  def update(self, step: int, metrics) -> None:
    """Records the metrics of ``step`` (1-based count of steps done)."""
    if not self._is_chief:
      return
    self._pending.append(metrics)
    if step % self._log_every and step != self._total:
      return
    now = time.perf_counter()
    values = _mean_of_finite_steps(self._pending)
    self._pending = []
    rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
    images_per_second = rate * self._global_batch
    eta = (self._total - step) / max(rate, 1e-9)
    self._last_step, self._last_time = step, now
    line = (f'step {step}/{self._total} | loss {values["loss"]:.5f} | '
            f'{images_per_second:.1f} img/s | ETA {format_duration(eta)}')
    if self._live:
      bar = _bar(step / self._total)
      sys.stderr.write(f'\r{bar} {line}   ')
      if step == self._total:
        sys.stderr.write('\n')
      sys.stderr.flush()
    logging.info(line)
    self.scalars(step, {**{f'train/{k}': v for k, v in values.items()},
                        'train/images_per_second': images_per_second})

  def scalars(self, step: int, values: dict) -> None:
    if self._writer is not None:
      for name, value in values.items():
        self._writer.add_scalar(name, value, step)
      self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


def _mean_of_finite_steps(pending: list[dict]) -> dict[str, float]:
  """The mean of each metric over the steps whose 'finite' flag is set (all
  steps when none is): a skipped non-finite step (train.skip_nonfinite)
  changed nothing and would make the interval's loss NaN."""
  finite = [m for m in pending if np.asarray(m.get('finite', 1.0)).all()]
  kept = finite or pending
  return {k: float(np.mean([np.asarray(m[k]).mean() for m in kept]))
          for k in kept[0] if k != 'finite'}


def _bar(fraction: float, width: int = 24) -> str:
  filled = int(round(fraction * width))
  return '[' + '#' * filled + '.' * (width - filled) + ']'
