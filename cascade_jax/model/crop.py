"""Crop module (paper Sec. 4.1, Fig. 6): per-joint windows of feature maps.

Windows keep a constant context of ``context`` input pixels at every
resolution: a map at stride t gives a (context / t)^2 window. All windows of
one joint cover the SAME block of input pixels, so that upsampling by t (with
half-pixel centres) maps every cropped cell back onto the input pixels it
covers:

  * Grid g = the coarsest stride cropped (2**num_levels for the coarse
    features: conv2 of the last bank). ``context`` must be a multiple of g,
    which makes every window whole (default 40 = the paper's 36 rounded up
    to a multiple of 8: windows 40, 20, 20, 10, 10, 5 px).
  * Window origin o (input pixel of the top-left corner, per axis):
    o = g * floor((c - (context - 1) / 2) / g + 1/2), c the crop centre
    clipped to the image. The window covers input pixels o .. o + context - 1;
    its centre o + (context - 1) / 2 is within g / 2 of c. The sub-pixel
    remainder is not lost: the fine model decodes in window pixels and adds
    o, so the final location does not depend on c beyond the window choice.
    For 8x pooling and context = 8 (mod 16), as the default 40, a coarse
    argmax (a cell centre 8j + 3.5) is exactly the window centre.
  * A map at stride t (t divides g) starts at feature pixel o / t: its pixel
    i covers input pixels [t*i, t*i + t - 1] (DESIGN section 5).

Feature maps are zero-padded by half a window (plus the rounding slack)
before ``jax.lax.dynamic_slice``, which would otherwise CLAMP the start into
range and shift windows at the border off their joint. Centres outside the
image are clipped to the border pixel first, so the padding always suffices.
The crop is a ``dynamic_slice`` vmapped over batch and joints (a gather); its
gradient is the autodiff scatter-add: output gradients are added to the
feature-map gradients at the sampled pixels, overlapping windows summed
(paper Sec. 4.1).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

# The paper's 36 input pixels, rounded up to a multiple of 8 (3 banks).
DEFAULT_CONTEXT = 40


def check_context(context: int, grid: int) -> None:
  """Raises unless windows of ``context`` input pixels are whole at ``grid``."""
  if context <= 0 or context % grid:
    raise ValueError(
        f'context = {context} input pixels must be a positive multiple of '
        f'{grid} (the coarsest cropped stride) so that every window is whole; '
        f'e.g. {max(grid, -(-context // grid) * grid)}.')


def window_origins(centres: jax.Array, image_size: tuple[int, int],
                   context: int, grid: int) -> jax.Array:
  """Top-left input pixels of the windows, aligned to the stride grid.

  Args:
    centres: [B, J, 2] (x, y) crop centres in input pixels (any real values).
    image_size: (H, W) of the input image.
    context: window size in input pixels, a multiple of grid.
    grid: the coarsest stride that will be cropped.

  Returns:
    [B, J, 2] int32 (x, y) origins o, multiples of grid (module docstring).
  """
  check_context(context, grid)
  height, width = image_size
  upper = jnp.asarray([width - 1, height - 1], jnp.float32)
  centres = jnp.clip(centres.astype(jnp.float32), 0.0, upper)
  cells = jnp.floor((centres - (context - 1) / 2) / grid + 0.5)
  return (cells * grid).astype(jnp.int32)


def crop_windows(feature_map: jax.Array, origins: jax.Array, context: int,
                 stride: int, grid: int) -> jax.Array:
  """Crops one feature map at every joint's window.

  Args:
    feature_map: [B, h, w, C] at stride ``stride``: pixel i covers input
      pixels [stride * i, stride * i + stride - 1]; h = ceil(H / stride).
    origins: [B, J, 2] from ``window_origins`` with the same context and grid.
    context: window size in input pixels.
    stride: input pixels per feature pixel; divides grid.
    grid: the grid of ``origins``.

  Returns:
    [B, J, context / stride, context / stride, C]; pixels outside the map 0.
  """
  if grid % stride:
    raise ValueError(f'crop stride {stride} must divide the grid {grid}.')
  size = context // stride
  # Clipped centres give o in [-(context + grid) / 2, H - 1 + (grid -
  # context) / 2 + 1/2]: this padding keeps every window inside the padded
  # map, so dynamic_slice never clamps.
  pad = -(-(context + grid) // (2 * stride))
  padded = jnp.pad(feature_map, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  starts = origins // stride + pad  # Exact: origins are multiples of grid.

  def crop_one(image, start):  # [h, w, C], [2] (x, y) -> [size, size, C]
    return jax.lax.dynamic_slice(image, (start[1], start[0], 0),
                                 (size, size, image.shape[-1]),
                                 allow_negative_indices=False)

  per_joint = jax.vmap(crop_one, in_axes=(None, 0))
  return jax.vmap(per_joint)(padded, starts)


def crop_features(features: Sequence[tuple[jax.Array, jax.Array]],
                  centres: jax.Array, context: int = DEFAULT_CONTEXT
                  ) -> tuple[list[jax.Array], jax.Array]:
  """Crops the coarse model's conv1 / conv2 features, grouped by resolution.

  Bank l's conv1 is at stride 2**l and its conv2 at 2**(l + 1), so conv2 of
  bank l - 1 and conv1 of bank l share a resolution: their crops are
  concatenated along channels, giving num_levels + 1 fine-model inputs.

  Args:
    features: one (conv1, conv2) pair per bank l, as returned by
      ``CoarseHeatmapModel(..., return_features=True)``: conv1
      [B, H / 2**l, W / 2**l, c1], conv2 [B, ceil(H / 2**(l+1)), ..., c2].
    centres: [B, J, 2] (x, y) crop centres in input pixels.
    context: window size in input pixels, a multiple of 2**num_levels.

  Returns:
    (crops, origins): crops[r] is [B, J, context / 2**r, context / 2**r,
    C_r] for r = 0 .. num_levels, C_0 = c1, C_r = c2 + c1 (conv2 of bank
    r - 1 first), C_L = c2; origins [B, J, 2] int32 input pixels.
  """
  num_levels = len(features)
  grid = 2**num_levels
  image_size = features[0][0].shape[1:3]
  origins = window_origins(centres, image_size, context, grid)
  by_resolution = [[] for _ in range(num_levels + 1)]
  for level, (conv1, conv2) in enumerate(features):
    by_resolution[level].append(
        crop_windows(conv1, origins, context, 2**level, grid))
    by_resolution[level + 1].append(
        crop_windows(conv2, origins, context, 2**(level + 1), grid))
  crops = [jnp.concatenate(group, axis=-1) if len(group) > 1 else group[0]
           for group in by_resolution]
  return crops, origins

