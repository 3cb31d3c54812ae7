"""Reads back the TensorBoard scalars that training writes (progress.py).

TensorBoard event files are TFRecord streams of `Event` protos: per record a
little-endian uint64 length, its masked CRC32C, the bytes, their masked
CRC32C. tensorboardX (already a dependency for writing) ships the proto and
the CRC; this reader needs neither TensorFlow nor the tensorboard package.
"""

from __future__ import annotations

import glob
import os
import struct

import numpy as np
from tensorboardX.proto import event_pb2
from tensorboardX.record_writer import masked_crc32c


def read_records(path: str):
  """Yields the payload bytes of each record of a TFRecord file.

  Stops quietly at a truncated last record (a run still writing); raises
  ValueError naming the file and offset on a corrupt one.
  """
  with open(path, 'rb') as f:
    data = f.read()
  offset = 0
  while offset + 12 <= len(data):
    header = data[offset:offset + 8]
    (length,) = struct.unpack('<Q', header)
    (header_crc,) = struct.unpack('<I', data[offset + 8:offset + 12])
    if masked_crc32c(header) != header_crc:
      raise ValueError(f'corrupt record header in {path} at byte {offset}')
    end = offset + 12 + length + 4
    if end > len(data):
      return
    payload = data[offset + 12:offset + 12 + length]
    (payload_crc,) = struct.unpack('<I', data[end - 4:end])
    if masked_crc32c(payload) != payload_crc:
      raise ValueError(f'corrupt record in {path} at byte {offset}')
    yield payload
    offset = end


def read_scalars(directory: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Every scalar series of the event files in ``directory``.

  Returns:
    {tag: (steps [N] int64, values [N] float64)}, sorted by step; where a
    resumed run logged a step twice, the later file's value wins.
  """
  paths = sorted(glob.glob(os.path.join(directory, 'events.out.tfevents.*')))
  if not paths:
    raise FileNotFoundError(f'no TensorBoard event files in {directory!r}')
  series: dict[str, dict[int, float]] = {}
  for path in paths:  # names start with the creation time: oldest first
    for payload in read_records(path):
      event = event_pb2.Event.FromString(payload)
      for value in event.summary.value:
        if value.HasField('simple_value'):
          series.setdefault(value.tag, {})[int(event.step)] = value.simple_value
  return {tag: (np.array(sorted(points), np.int64),
                np.array([points[s] for s in sorted(points)], np.float64))
          for tag, points in series.items()}
