"""Crop module (paper Sec. 4.1, Fig. 6): per-joint windows of feature maps.

Windows keep a constant context of ``context`` input pixels at every
resolution, and every window is centred on its crop centre: a coarse argmax
(the cell centre s*j + (s - 1) / 2 at pooling s) is exactly the window
centre at 4x, 8x and 16x alike.

  * Window origin o (input pixel of the top-left corner, per axis):
    o = round(c - (context - 1) / 2), c the crop centre clipped to the
    image. The window covers input pixels o .. o + context - 1; its centre
    o + (context - 1) / 2 equals c whenever c is a cell centre and
    ``context`` is even (it has the same half-pixel fraction), else it is
    within half a pixel of c.
  * A map at stride t: its pixel i covers input pixels [t*i, t*i + t - 1]
    (DESIGN section 5). o need not be a multiple of t, so the crop starts at
    the feature pixel floor(o / t) holding o and takes ``window_cells``
    pixels, enough to cover the window from there. The fine model upsamples
    each crop by t (half-pixel centres, so upsampled pixel k is input pixel
    t * floor(o / t) + k) and slices the window out at the remainder
    o - t * floor(o / t) (``upsample_window``): every bank's contribution
    then lands on the same input pixels, for any origin.

Feature maps are zero-padded before ``jax.lax.dynamic_slice``, which would
otherwise CLAMP the start into range and shift windows at the border off
their joint. Centres outside the image are clipped to the border pixel
first, so the padding always suffices. The crop is a ``dynamic_slice``
vmapped over batch and joints (a gather); its gradient is the autodiff
scatter-add: output gradients are added to the feature-map gradients at the
sampled pixels, overlapping windows summed (paper Sec. 4.1).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

# The paper's 36 input pixels (Sec. 4.1).
DEFAULT_CONTEXT = 36


def check_context(context: int) -> None:
  """Raises unless windows of ``context`` input pixels can be centred on a
  heat-map cell centre (s*j + (s - 1) / 2: a half-integer for even s)."""
  if context <= 0 or context % 2:
    raise ValueError(
        f'context = {context} input pixels must be a positive even number so '
        'that every window is centred on its coarse cell (cell centres are '
        'half-integers at 4x, 8x and 16x); e.g. '
        f'{max(2, context + context % 2)}.')


def window_origins(centres: jax.Array, image_size: tuple[int, int],
                   context: int) -> jax.Array:
  """Top-left input pixels of the windows centred on ``centres``.

  Args:
    centres: [B, J, 2] (x, y) crop centres in input pixels (any real values).
    image_size: (H, W) of the input image.
    context: window size in input pixels, even.

  Returns:
    [B, J, 2] int32 (x, y) origins o = round(c - (context - 1) / 2), c
    clipped to the image (module docstring).
  """
  check_context(context)
  height, width = image_size
  upper = jnp.asarray([width - 1, height - 1], jnp.float32)
  centres = jnp.clip(centres.astype(jnp.float32), 0.0, upper)
  return jnp.floor(centres - (context - 1) / 2 + 0.5).astype(jnp.int32)


def window_cells(context: int, stride: int) -> int:
  """Pixels per side of a crop at ``stride``: enough to cover ``context``
  input pixels from any origin, ceil((context + stride - 1) / stride)."""
  return -(-(context + stride - 1) // stride)


def crop_windows(feature_map: jax.Array, origins: jax.Array, context: int,
                 stride: int) -> jax.Array:
  """Crops one feature map at every joint's window.

  Args:
    feature_map: [B, h, w, C] at stride ``stride``: pixel i covers input
      pixels [stride * i, stride * i + stride - 1]; h = ceil(H / stride).
    origins: [B, J, 2] from ``window_origins`` with the same context.
    context: window size in input pixels.
    stride: input pixels per feature pixel.

  Returns:
    [B, J, n, n, C], n = ``window_cells(context, stride)``, starting at
    feature pixel floor(origins / stride); pixels outside the map 0.
  """
  size = window_cells(context, stride)
  # Clipped centres give o in [-context / 2, W - context / 2]: this padding
  # keeps every crop inside the padded map, so dynamic_slice never clamps.
  pad = -(-context // (2 * stride)) + 2
  padded = jnp.pad(feature_map, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  starts = origins // stride + pad  # Floor division, also for negative o.

  def crop_one(image, start):  # [h, w, C], [2] (x, y) -> [size, size, C]
    return jax.lax.dynamic_slice(image, (start[1], start[0], 0),
                                 (size, size, image.shape[-1]),
                                 allow_negative_indices=False)

  per_joint = jax.vmap(crop_one, in_axes=(None, 0))
  return jax.vmap(per_joint)(padded, starts)


def joint_windows(heatmaps: jax.Array, origins: jax.Array, context: int,
                  stride: int) -> jax.Array:
  """Each joint's window of its own heat-map.

  Args:
    heatmaps: [B, h, w, J] at stride ``stride``.
    origins: [B, J, 2] window origins (``window_origins``).
    context: window size in input pixels.
    stride: input pixels per heat-map cell.

  Returns:
    [B, J, n, n, 1]: joint j's window of channel j, as ``crop_windows``.
  """
  def one_joint(heatmap, origin):  # [B, h, w, 1], [B, 2] -> [B, n, n, 1]
    return crop_windows(heatmap, origin[:, None], context, stride)[:, 0]

  per_joint = jnp.moveaxis(heatmaps, -1, 1)[..., None]  # [B, J, h, w, 1]
  return jax.vmap(one_joint, in_axes=1, out_axes=1)(per_joint, origins)


def _upsampling_rows(cells: int, stride: int, context: int) -> np.ndarray:
  """[stride, context, cells]: row u of table[o] holds the weights of the
  ``cells`` crop pixels in pixel o + u of the crop upsampled by ``stride``.

  Bilinear with half-pixel centres (upsampled pixel k samples cell
  coordinate (k + 0.5) / stride - 0.5) and the edge cells extended, as
  ``jax.image.resize(..., 'linear')``.
  """
  source = (np.arange(cells * stride) + 0.5) / stride - 0.5
  below = np.floor(source)
  fraction = source - below
  upsampling = np.zeros((cells * stride, cells))
  for cell, weight in ((below, 1.0 - fraction), (below + 1, fraction)):
    np.add.at(upsampling,
              (np.arange(cells * stride),
               np.clip(cell, 0, cells - 1).astype(int)), weight)
  return np.stack([upsampling[o:o + context] for o in range(stride)])


def upsample_window(crops: jax.Array, origins: jax.Array, context: int,
                    stride: int) -> jax.Array:
  """Upsamples crops at ``stride`` to input pixels and aligns the window.

  The crop, upsampled bilinearly by ``stride`` (``_upsampling_rows``), has
  pixel k at input pixel stride * floor(o / stride) + k, so the window
  starts at the remainder o mod stride. Both steps are one small matrix per
  axis and window, chosen by the remainder: the window is Ry @ crop @ Rx^T,
  whose gradient is matmuls too (a resize and a per-window slice have
  scatters as gradients, slow on XLA CPU: BUILD_NOTES, speed).

  Args:
    crops: [B, n, n, C], ``crop_windows`` crops at ``stride`` (after any
      translation-equivariant layers), n = ``window_cells(context, stride)``.
    origins: [B, 2] (x, y) window origins o of these crops.
    context: window size in input pixels.
    stride: the crops' stride.

  Returns:
    [B, context, context, C]: pixel (u, v) is input pixel o + (u, v).
  """
  table = jnp.asarray(_upsampling_rows(crops.shape[1], stride, context),
                      crops.dtype)
  offsets = origins % stride  # o - stride * floor(o / stride), in [0, stride).
  rows, columns = table[offsets[:, 1]], table[offsets[:, 0]]  # [B, ctx, n]
  return jnp.einsum('buy,byxc,bvx->buvc', rows, crops, columns)


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
    context: window size in input pixels, even.

  Returns:
    (crops, origins): crops[r] is [B, J, n_r, n_r, C_r] at stride 2**r,
    n_r = ``window_cells(context, 2**r)``, for r = 0 .. num_levels,
    C_0 = c1, C_r = c2 + c1 (conv2 of bank r - 1 first), C_L = c2; origins
    [B, J, 2] int32 input pixels.
  """
  num_levels = len(features)
  image_size = features[0][0].shape[1:3]
  origins = window_origins(centres, image_size, context)
  by_resolution = [[] for _ in range(num_levels + 1)]
  for level, (conv1, conv2) in enumerate(features):
    by_resolution[level].append(
        crop_windows(conv1, origins, context, 2**level))
    by_resolution[level + 1].append(
        crop_windows(conv2, origins, context, 2**(level + 1)))
  crops = [jnp.concatenate(group, axis=-1) if len(group) > 1 else group[0]
           for group in by_resolution]
  return crops, origins

