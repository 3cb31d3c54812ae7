"""Reading back the TensorBoard scalars that training writes."""

import os

import numpy as np
import pytest
from tensorboardX import SummaryWriter

from cascade_jax.train import events


def _write(directory, values):
  writer = SummaryWriter(str(directory))
  for step, value in values:
    writer.add_scalar('train/loss', value, step)
  writer.close()


def test_reads_the_scalars_tensorboardx_writes(tmp_path):
  _write(tmp_path, [(1, 0.5), (2, 0.25), (3, 0.125)])
  series = events.read_scalars(str(tmp_path))
  steps, values = series['train/loss']
  np.testing.assert_array_equal(steps, [1, 2, 3])
  np.testing.assert_allclose(values, [0.5, 0.25, 0.125])


def test_a_truncated_last_record_is_skipped_and_a_corrupt_one_named(tmp_path):
  _write(tmp_path, [(1, 0.5), (2, 0.25)])
  (path,) = [tmp_path / f for f in os.listdir(tmp_path)]
  data = path.read_bytes()
  path.write_bytes(data[:-3])  # a run still writing its last record
  steps, _ = events.read_scalars(str(tmp_path))['train/loss']
  np.testing.assert_array_equal(steps, [1])
  path.write_bytes(data[:-3] + b'\x00\x00\x00')  # same length, bad checksum
  with pytest.raises(ValueError, match=path.name):
    events.read_scalars(str(tmp_path))


def test_a_resumed_run_overrides_repeated_steps(tmp_path):
  _write(tmp_path, [(1, 0.5), (2, 0.25)])
  import time  # pylint: disable=g-import-not-at-top
  time.sleep(1.1)  # event file names carry the creation second
  _write(tmp_path, [(2, 0.3), (3, 0.1)])
  steps, values = events.read_scalars(str(tmp_path))['train/loss']
  np.testing.assert_array_equal(steps, [1, 2, 3])
  np.testing.assert_allclose(values, [0.5, 0.3, 0.1])


def test_a_folder_without_events_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match=str(tmp_path)):
    events.read_scalars(str(tmp_path))
