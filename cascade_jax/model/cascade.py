"""The full cascade (paper Sec. 4, Fig. 4): coarse model + crop + fine model.

images -> coarse heat-maps and conv1 / conv2 features -> coarse argmax per
joint (no gradient: the argmax is piecewise constant) -> windows of the
features around it -> Siamese fine model -> fine heat-maps. The crop's
gradient flows into the coarse features, so E1 + lambda * E2 trains both
jointly (Sec. 4.2). Crop centres default to the coarse prediction in
training as in evaluation (the paper); a train step may pass its own
(e.g. jittered ground truth) through ``crop_centres``.

With a spatial model (Sec. 3.3, `spatial.SpatialModel`) the coarse heat-maps
and the torso position go through the MRF first and the windows are cut
around the argmax of its marginals: the fine model refines the annotated
person, not whichever person the coarse model fired on most.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from cascade_jax import heatmaps as heatmap_codec
from cascade_jax.model import coarse
from cascade_jax.model import crop
from cascade_jax.model import fine
from cascade_jax.model import spatial as spatial_lib


class CascadeOutputs(NamedTuple):
  """What ``CascadeModel`` returns.

  Attributes:
    coarse_heatmaps: [B, H / s, W / s, J].
    fine_heatmaps: [B, context, context, J] in window pixels.
    crop_centres: [B, J, 2] (x, y) input pixels the windows were cut around.
    window_origins: [B, J, 2] int32 input pixel of each window's (0, 0).
    spatial_heatmaps: [B, H / s, W / s, J] the spatial model's log-marginals,
      None without a spatial model.
  """
  coarse_heatmaps: jax.Array
  fine_heatmaps: jax.Array
  crop_centres: jax.Array
  window_origins: jax.Array
  spatial_heatmaps: jax.Array | None = None


class CascadeModel(nn.Module):
  """Coarse heat-map model with a fine model on its cropped features.

  Parameters live under 'coarse' (a ``CoarseHeatmapModel``, so a pretrained
  coarse checkpoint drops in) and 'fine' (a ``FineHeatmapModel``).

  Attributes:
    num_joints: J.
    pooling: coarse output stride s, one of 4, 8, 16.
    bank_widths: coarse (c1, c2, c3, c4).
    head_widths: coarse hidden 1x1 widths.
    dropout_rate: coarse SpatialDropout rate.
    num_levels: pyramid levels.
    lcn_kernel_size: coarse LCN window.
    fine_bank_widths: widths of the fine model's per-bank 7x7 convs.
    fine_hidden_width: width of the fine model's shared 1x1 conv.
    context: crop window in input pixels (``crop`` module docstring).
    spatial: optional MRF spatial model (parameters under 'spatial'); its
      marginals' argmax replaces the coarse argmax as the crop centre.
    dtype: computation dtype of the ConvNets' layers (``CoarseHeatmapModel``);
      the heat-maps, the MRF, the argmax and the crop coordinates stay
      float32.
    fine_heatmap_input: also give each joint's fine instance the window of
      its own coarse heat-map (``crop.joint_windows``; not in the paper):
      the shared sub-network then knows which joint its window is for, and
      where the coarse model put it (BUILD_NOTES, issue 13).
    fine_other_joints_input: with ``fine_heatmap_input``, a second channel
      in that window: the maximum of the other joints' coarse maps
      (``other_joints_maximum``; not in the paper). It says where the
      other joints are, which the fine model mistook for its own (the
      wrist's window holds the elbow: BUILD_NOTES, issue 13, item 11).
  """
  num_joints: int
  pooling: int = 8
  bank_widths: Sequence[int] = (128, 128, 128, 512)
  head_widths: Sequence[int] = (256, 256)
  dropout_rate: float = 0.5
  num_levels: int = 3
  lcn_kernel_size: int = 9
  fine_bank_widths: Sequence[int] = (64, 64)
  fine_hidden_width: int = 128
  context: int = crop.DEFAULT_CONTEXT
  spatial: spatial_lib.SpatialModel | None = None
  dtype: jax.typing.DTypeLike = jnp.float32
  fine_heatmap_input: bool = False
  fine_other_joints_input: bool = False

  @nn.compact
  def __call__(self, images: jax.Array, train: bool,
               crop_centres: jax.Array | None = None,
               torso: jax.Array | None = None) -> CascadeOutputs:
    """Coarse and fine heat-maps.

    Args:
      images: [B, H, W, 3], as for ``CoarseHeatmapModel``.
      train: enables SpatialDropout (needs a 'dropout' rng).
      crop_centres: optional [B, J, 2] (x, y) input-pixel window centres;
        default the argmax of the spatial model's marginals, or of the coarse
        heat-maps without one.
      torso: [B, 2] (x, y) torso position in input pixels; required by (and
        only by) a spatial model.

    Returns:
      ``CascadeOutputs``.
    """
    coarse_heatmaps, features = coarse.coarse_part(self)(
        images, train, return_features=True)
    spatial_heatmaps = None
    if self.spatial is not None:
      if torso is None:
        raise ValueError('this cascade has a spatial model: pass the torso '
                         'position [B, 2] (batch key \'torso\')')
      spatial_heatmaps = self.spatial(coarse_heatmaps, torso)
    elif torso is not None:
      raise ValueError('a torso position was given to a cascade without a '
                       'spatial model (model.spatial.enabled is off)')
    if crop_centres is None:
      crop_centres, _ = heatmap_codec.decode(
          coarse_heatmaps if spatial_heatmaps is None else spatial_heatmaps,
          self.pooling)
    crop_centres = jax.lax.stop_gradient(crop_centres)
    crops, origins = crop.crop_features(features, crop_centres, self.context)
    hint = fine_hint(coarse_heatmaps, origins, self.context, self.pooling,
                     self.fine_heatmap_input, self.fine_other_joints_input)
    fine_heatmaps = fine.FineHeatmapModel(
        self.num_joints, self.fine_bank_widths, self.fine_hidden_width,
        dtype=self.dtype, hint_stride=self.pooling, name='fine')(
            crops, origins, hint)
    return CascadeOutputs(coarse_heatmaps, fine_heatmaps, crop_centres,
                          origins, spatial_heatmaps)


def fine_hint(coarse_heatmaps: jax.Array, origins: jax.Array, context: int,
              pooling: int, heatmap_input: bool,
              other_joints_input: bool) -> jax.Array | None:
  """The fine model's heat-map input (``CascadeModel``'s
  ``fine_heatmap_input`` and ``fine_other_joints_input``): [B, J, n, n, 1 or
  2] windows of each joint's own coarse map and, as a second channel, of the
  other joints' maximum; None when ``heatmap_input`` is off. No gradient:
  E2 does not train the coarse maps through it."""
  if not hint_channels(heatmap_input, other_joints_input):
    return None
  maps = jax.lax.stop_gradient(coarse_heatmaps)
  hint = crop.joint_windows(maps, origins, context, pooling)
  if other_joints_input:
    others = crop.joint_windows(other_joints_maximum(maps), origins, context,
                                pooling)
    hint = jnp.concatenate([hint, others], axis=-1)
  return hint


def hint_channels(heatmap_input: bool, other_joints_input: bool) -> int:
  """Channels of ``fine_hint``'s windows: 0 (no heat-map input), 1 (the
  joint's own coarse map) or 2 (and the other joints' maximum)."""
  if other_joints_input and not heatmap_input:
    raise ValueError('fine_other_joints_input adds a channel to the fine '
                     'model\'s heat-map input: set fine_heatmap_input too')
  return int(heatmap_input) + int(other_joints_input)


def other_joints_maximum(heatmaps: jax.Array) -> jax.Array:
  """[B, h, w, J] -> [B, h, w, J]: channel j is, at every cell, the
  maximum of the other joints' heat-maps (every channel but j)."""
  others = ~jnp.eye(heatmaps.shape[-1], dtype=bool)  # [J (own), J (other)]
  return jnp.max(heatmaps[..., None, :], axis=-1, where=others,
                 initial=-jnp.inf)


# How the fine answer and the coarse one are combined (``locations``).
FUSION_RULES = ('fine', 'threshold', 'product', 'cell')


def locations(outputs: CascadeOutputs, pooling: int, fusion: str = 'fine',
              min_peak: float = 0.0, cell_margin: float = 0.0,
              subpixel: bool = False, coarse_power: float = 1.0,
              prior: jax.Array | None = None
              ) -> tuple[jax.Array, jax.Array]:
  """Final joint predictions and their fine peaks.

  Args:
    outputs: the cascade's outputs.
    pooling: the coarse stride s.
    fusion: 'fine', the paper's rule: the fine argmax (coarse location +
      offset); 'threshold': the fine argmax where its peak reaches
      ``min_peak``, else the crop centre (the coarse, or MRF, location):
      a weak peak says the window does not hold the joint; 'product': the
      argmax of the fine map times the coarse map upsampled (bilinearly) to
      the window's pixels to the power ``coarse_power``, both clipped at 0
      (the crop centre where the product is 0 everywhere); 'cell': the fine
      argmax within s / 2 + ``cell_margin`` input pixels of the crop centre
      on each axis (the coarse cell plus a margin).
    min_peak: the threshold of 'threshold'.
    cell_margin: the margin of 'cell', in input pixels.
    subpixel: quarter-pixel refinement of the fine argmax.
    coarse_power: the exponent of 'product': 1 weighs the fine map by the
      coarse one, more trusts the coarse location more (the coarse map's
      spread shrinks by its square root).
    prior: [B, h, w, J] the heat-maps whose argmax placed the windows, by
      which 'product' weighs: default the coarse ones; with an MRF its
      `spatial.window_prior`.

  Returns:
    ([B, J, 2] (x, y) in input pixels, [B, J] the fine map's value at the
    chosen location (for a fallback, the fine peak that was too weak)).
  """
  if fusion not in FUSION_RULES:
    raise ValueError(f'unknown fusion rule {fusion!r}; expected one of '
                     f'{FUSION_RULES}')
  maps = outputs.fine_heatmaps
  origins = outputs.window_origins
  if fusion == 'product':
    prior = _coarse_in_windows(
        outputs.coarse_heatmaps if prior is None else prior, origins,
        maps.shape[1], pooling)
    maps = jnp.maximum(maps, 0.0) * jnp.maximum(prior, 0.0)**coarse_power
  elif fusion == 'cell':
    maps = _outside_cell_to_min(maps, outputs.crop_centres - origins,
                                pooling / 2 + cell_margin)
  joints, peaks = fine.decode_locations(maps, origins, subpixel)
  local = jnp.round(joints - origins).astype(jnp.int32)
  scores = heatmap_codec.value_at(outputs.fine_heatmaps, local)
  if fusion == 'threshold':
    joints = jnp.where((scores < min_peak)[..., None], outputs.crop_centres,
                       joints)
  elif fusion == 'product':
    joints = jnp.where((peaks > 0)[..., None], joints, outputs.crop_centres)
  return joints, scores


def _outside_cell_to_min(maps: jax.Array, centres: jax.Array,
                         half_width: float) -> jax.Array:
  """``maps`` [B, C, C, J] with pixels farther than ``half_width`` from the
  window-pixel ``centres`` [B, J, 2] on either axis set below the minimum."""
  pixels = jnp.arange(maps.shape[1], dtype=jnp.float32)
  near_x = jnp.abs(pixels[None, None, :, None]
                   - centres[:, None, None, :, 0]) <= half_width
  near_y = jnp.abs(pixels[None, :, None, None]
                   - centres[:, None, None, :, 1]) <= half_width
  return jnp.where(near_x & near_y, maps, jnp.min(maps) - 1.0)


def _coarse_in_windows(coarse_heatmaps: jax.Array, origins: jax.Array,
                       context: int, pooling: int) -> jax.Array:
  """The coarse heat-maps [B, h, w, J] sampled bilinearly at every window
  pixel: [B, context, context, J]. Input pixel p is cell coordinate
  (p - (s - 1) / 2) / s (DESIGN section 5); edges extended."""

  def weights(first_pixel, size):  # [B, J] -> [B, J, context, size]
    cells = (first_pixel[..., None] + jnp.arange(context)
             - (pooling - 1) / 2) / pooling
    low = jnp.floor(cells)
    frac = (cells - low)[..., None]
    low = low.astype(jnp.int32)
    return ((1 - frac) * jax.nn.one_hot(jnp.clip(low, 0, size - 1), size)
            + frac * jax.nn.one_hot(jnp.clip(low + 1, 0, size - 1), size))

  height, width = coarse_heatmaps.shape[1:3]
  rows = weights(origins[..., 1], height)  # [B, J, context, h]
  cols = weights(origins[..., 0], width)   # [B, J, context, w]
  return jnp.einsum('bjuh,bhwj,bjvw->buvj', rows, coarse_heatmaps, cols)
