"""All warp geometry: affine matrices, point transforms and image warps.

Conventions (DESIGN section 5): coordinates are (x, y), 0-based, with pixel
centres at integer positions, so an image of width W spans x in [-0.5, W - 0.5]
and its centre is at x = (W - 1) / 2. Every transform is a 3x3 float64 matrix
acting on homogeneous column vectors [x, y, 1]; training crops and test-time
back-projection use the same matrices (the latter through `invert`).
"""

from __future__ import annotations

import cv2
import numpy as np


def crop_matrix(center, box_size, output_size, rotation_deg=0.0,
                flip=False) -> np.ndarray:
  """Matrix taking source pixels to a crop of ``output_size``.

  The source box of ``box_size`` = (w, h) pixels centred on ``center`` = (x, y),
  rotated by ``rotation_deg`` (counter-clockwise as seen on screen), lands on
  the whole output image of ``output_size`` = (W, H); with ``flip`` the result
  is mirrored left-right about the output's vertical centre line.

  Returns:
    [3, 3] float64 matrix M with [x', y', 1] = M @ [x, y, 1].
  """
  cx, cy = (float(v) for v in center)
  bw, bh = (float(v) for v in box_size)
  out_w, out_h = (float(v) for v in output_size)
  if bw <= 0 or bh <= 0:
    raise ValueError(f'box_size must be positive, got {box_size}')
  to_origin = translation(-cx, -cy)
  # Image y points down, so a counter-clockwise rotation on screen is a
  # clockwise one in these axes: the angle's sign is inverted.
  theta = np.deg2rad(rotation_deg)
  cos, sin = np.cos(theta), np.sin(theta)
  rotate = np.array([[cos, sin, 0.0], [-sin, cos, 0.0], [0.0, 0.0, 1.0]])
  resize = np.diag([out_w / bw, out_h / bh, 1.0])
  mirror = np.diag([-1.0 if flip else 1.0, 1.0, 1.0])
  to_output = translation((out_w - 1) / 2, (out_h - 1) / 2)
  return to_output @ mirror @ resize @ rotate @ to_origin


def translation(dx: float, dy: float) -> np.ndarray:
  return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def scaling(sx: float, sy: float | None = None) -> np.ndarray:
  return np.diag([sx, sx if sy is None else sy, 1.0])


def invert(matrix: np.ndarray) -> np.ndarray:
  return np.linalg.inv(matrix)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
  """Applies a [3, 3] affine matrix to points [..., 2] (x, y)."""
  points = np.asarray(points, dtype=np.float64)
  return points @ matrix[:2, :2].T + matrix[:2, 2]


def warp_image(image: np.ndarray, matrix: np.ndarray, output_size,
               border_value=0) -> np.ndarray:
  """Warps ``image`` [H, W, C] into ``output_size`` = (W, H) with ``matrix``.

  Bilinear, constant border. OpenCV shares our convention (integer pixel
  centres), so a point p of the source lands exactly at transform_points(M, p).
  """
  out_w, out_h = (int(v) for v in output_size)
  return cv2.warpAffine(image, matrix[:2].astype(np.float64), (out_w, out_h),
                        flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT,
                        borderValue=border_value)


def flip_joints(joints: np.ndarray, visible: np.ndarray,
                flip_permutation: np.ndarray):
  """Relabels joints after a mirror: left takes right's values and vice versa.

  The coordinates themselves are mirrored by the warp matrix; this only swaps
  which joint each row belongs to. Returns new arrays (inputs are untouched).
  """
  return joints[..., flip_permutation, :], visible[..., flip_permutation]
