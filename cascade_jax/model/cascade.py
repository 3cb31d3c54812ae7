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
    num_levels: pyramid levels; context must be a multiple of 2**num_levels.
    lcn_kernel_size: coarse LCN window.
    fine_bank_widths: widths of the fine model's per-bank 7x7 convs.
    fine_hidden_width: width of the fine model's shared 1x1 conv.
    context: crop window in input pixels (``crop`` module docstring).
    spatial: optional MRF spatial model (parameters under 'spatial'); its
      marginals' argmax replaces the coarse argmax as the crop centre.
    dtype: computation dtype of the ConvNets' layers (``CoarseHeatmapModel``);
      the heat-maps, the MRF, the argmax and the crop coordinates stay
      float32.
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
    fine_heatmaps = fine.FineHeatmapModel(
        self.num_joints, self.fine_bank_widths, self.fine_hidden_width,
        dtype=self.dtype, name='fine')(crops)
    return CascadeOutputs(coarse_heatmaps, fine_heatmaps, crop_centres,
                          origins, spatial_heatmaps)


def locations(outputs: CascadeOutputs, subpixel: bool = False) -> jax.Array:
  """Final joint predictions [B, J, 2] (x, y) in input pixels.

  Coarse location + fine offset, i.e. window origin + fine argmax.
  """
  return fine.decode_locations(outputs.fine_heatmaps, outputs.window_origins,
                               subpixel)
