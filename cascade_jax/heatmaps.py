"""Heat-map codec: Gaussian targets in, joint locations out.

Conventions, stated once (DESIGN section 5):
  * Heat-maps are channels-last, [..., H, W, J], as the Flax model emits them.
  * Joints are (x, y) in input pixels, integer pixel centres.
  * A heat-map at stride s: cell (i, j) covers input pixels [s*j, s*j + s - 1]
    in x, so its centre is x = s*j + (s - 1) / 2 (likewise for y with i).
  * Targets are unnormalised Gaussians (peak 1 at the joint) with sigma in
    heat-map cells; invisible joints get an all-zero map and weight 0.

Encoding is numpy (it runs in the input pipeline); decoding works on numpy or
jax arrays alike.
"""

from __future__ import annotations

import numpy as np


def input_to_heatmap(points, stride: int):
  """Input-pixel coordinates -> heat-map cell coordinates (same stride both axes)."""
  return (points - (stride - 1) / 2) / stride


def heatmap_to_input(points, stride: int):
  """Heat-map cell coordinates -> input-pixel coordinates."""
  return points * stride + (stride - 1) / 2


def encode(joints: np.ndarray, visible: np.ndarray, heatmap_size, stride: int,
           sigma: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
  """Gaussian target heat-maps for one example.

  Args:
    joints: [J, 2] (x, y) in input pixels.
    visible: [J] bool or {0, 1}: joints with a usable label.
    heatmap_size: (H, W) of the target heat-map.
    stride: input pixels per heat-map cell.
    sigma: standard deviation in heat-map cells (the paper's 1.5).

  Returns:
    targets [H, W, J] float32 and weights [J] float32 (1 for labelled joints
    whose Gaussian centre lies inside the heat-map, else 0).
  """
  height, width = heatmap_size
  centres = input_to_heatmap(np.asarray(joints, np.float64), stride)  # [J, 2]
  ys = np.arange(height, dtype=np.float64)[:, None, None]
  xs = np.arange(width, dtype=np.float64)[None, :, None]
  sq_dist = (xs - centres[:, 0]) ** 2 + (ys - centres[:, 1]) ** 2
  targets = np.exp(-sq_dist / (2.0 * sigma ** 2))
  inside = ((centres[:, 0] >= -0.5) & (centres[:, 0] <= width - 0.5)
            & (centres[:, 1] >= -0.5) & (centres[:, 1] <= height - 0.5))
  weights = (np.asarray(visible, bool) & inside).astype(np.float32)
  return (targets * weights).astype(np.float32), weights


def decode(heatmaps, stride: int, subpixel: bool = False):
  """Argmax locations of heat-maps [..., H, W, J], in input pixels.

  With ``subpixel`` the argmax moves a quarter cell towards the larger of its
  two neighbours on each axis (the usual refinement for Gaussian targets).

  Returns:
    (joints [..., J, 2] float32 (x, y) in input pixels, scores [..., J] = peak).
  """
  xp = _array_module(heatmaps)
  flat, x, y = _flat_argmax(xp, heatmaps)
  cells = xp.stack([x, y], axis=-1).astype(np.float32)
  if subpixel:
    height, width = heatmaps.shape[-3:-1]
    cells = cells + 0.25 * _neighbour_sign(xp, flat, x, y, height, width)
  return heatmap_to_input(cells, stride).astype(np.float32), xp.max(flat, -1)


def _flat_argmax(xp, heatmaps):
  """Heat-maps [..., H, W, J] as [..., J, H * W], and the (x, y) cell of
  each map's argmax, [..., J] each."""
  *batch, _, width, num_joints = heatmaps.shape
  flat = xp.reshape(xp.moveaxis(heatmaps, -1, -3), (*batch, num_joints, -1))
  index = xp.argmax(flat, axis=-1)
  return flat, index % width, index // width


def value_at(heatmaps, cells):
  """Heat-maps [..., H, W, J] at integer (x, y) cells [..., J, 2] (clipped
  to the map): [..., J]."""
  xp = _array_module(heatmaps)
  *batch, height, width, num_joints = heatmaps.shape
  flat = xp.reshape(xp.moveaxis(heatmaps, -1, -3), (*batch, num_joints, -1))
  return _value_at(xp, flat, cells[..., 0], cells[..., 1], height, width)


def _value_at(xp, flat, x, y, height, width):
  """flat [..., J, H * W] at cells (x, y) [..., J], clipped to the map."""
  xx = xp.clip(x, 0, width - 1)
  yy = xp.clip(y, 0, height - 1)
  return xp.take_along_axis(flat, (yy * width + xx)[..., None], axis=-1)[..., 0]


def decode_dark(heatmaps, stride: int, sigma: float = 1.5):
  """Distribution-aware decoding (DARK, Zhang et al., CVPR 2020).

  The heat-maps are blurred with the targets' Gaussian (zero padding; each
  map rescaled to its original peak), and the log of the result is expanded
  to second order around the argmax of the raw map: the maximum of the
  quadratic, argmax - H^-1 g, is the location. For a Gaussian target the
  log is exactly quadratic, so the decoding is exact there (tested). Gradient
  and Hessian by central differences, the Hessian's diagonal over two cells
  as in the authors' code. Where the Hessian is not negative definite, or
  the argmax is within two cells of the border, the argmax is kept; the
  offset is clipped to one cell on each axis.

  Args:
    heatmaps: [..., H, W, J], numpy or jax.
    stride: input pixels per cell.
    sigma: the targets' sigma in cells (the blur).

  Returns:
    (joints [..., J, 2] float32 (x, y) in input pixels, scores [..., J] =
    raw peak), as ``decode``.
  """
  xp = _array_module(heatmaps)
  *batch, height, width, num_joints = heatmaps.shape
  heatmaps = heatmaps.astype(np.float32)
  flat, x, y = _flat_argmax(xp, heatmaps)
  maps = xp.moveaxis(heatmaps, -1, -3)  # [..., J, H, W]
  peak = xp.max(maps, axis=(-2, -1), keepdims=True)
  blurred = xp.einsum('yi,...ij,xj->...yx', _blur_matrix(height, sigma), maps,
                      _blur_matrix(width, sigma))
  blurred = blurred * peak / xp.max(blurred, axis=(-2, -1), keepdims=True)
  log_flat = xp.reshape(xp.log(xp.maximum(blurred, 1e-10)),
                        (*batch, num_joints, -1))

  def at(dx, dy):
    return _value_at(xp, log_flat, x + dx, y + dy, height, width)

  centre = at(0, 0)
  gx = 0.5 * (at(1, 0) - at(-1, 0))
  gy = 0.5 * (at(0, 1) - at(0, -1))
  hxx = 0.25 * (at(2, 0) - 2 * centre + at(-2, 0))
  hyy = 0.25 * (at(0, 2) - 2 * centre + at(0, -2))
  hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
  det = hxx * hyy - hxy**2
  usable = ((hxx < 0) & (det > 0) & (x >= 2) & (x < width - 2) & (y >= 2)
            & (y < height - 2))
  safe_det = xp.where(usable, det, 1.0)
  offset_x = xp.where(usable, -(hyy * gx - hxy * gy) / safe_det, 0.0)
  offset_y = xp.where(usable, -(hxx * gy - hxy * gx) / safe_det, 0.0)
  cells = xp.stack([x + xp.clip(offset_x, -1.0, 1.0),
                    y + xp.clip(offset_y, -1.0, 1.0)], axis=-1)
  return heatmap_to_input(cells, stride).astype(np.float32), xp.max(flat, -1)


def _blur_matrix(size: int, sigma: float) -> np.ndarray:
  """[size, size] Gaussian blur along one axis (radius 3 sigma, zero
  padding): row i holds the kernel centred on pixel i."""
  offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
  radius = int(np.ceil(3 * sigma))
  kernel = np.exp(-offsets**2 / (2.0 * sigma**2)) * (np.abs(offsets) <= radius)
  norm = np.sum(np.exp(-np.arange(-radius, radius + 1)**2 / (2.0 * sigma**2)))
  return (kernel / norm).astype(np.float32)


def _neighbour_sign(xp, flat, x, y, height, width):
  """[..., J, 2]: sign of (right - left, below - above) around each argmax."""
  def around(xx, yy):
    return _value_at(xp, flat, xx, yy, height, width)
  dx = around(x + 1, y) - around(x - 1, y)
  dy = around(x, y + 1) - around(x, y - 1)
  # No move where the neighbour is clipped to the argmax itself (border).
  dx = xp.where((x > 0) & (x < width - 1), dx, 0)
  dy = xp.where((y > 0) & (y < height - 1), dy, 0)
  return xp.stack([xp.sign(dx), xp.sign(dy)], axis=-1).astype(np.float32)


def _array_module(array):
  if isinstance(array, np.ndarray):
    return np
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  return jnp
