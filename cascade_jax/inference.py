"""The test-time forward pass, written once for evaluation and the Predictor.

`predict` runs a coarse model or a cascade on a batch of crops and decodes
every answer the model can give (the coarse argmax, its sub-pixel
decodings, the MRF, the cascade's final locations by its fusion rule
`cascade.locations`), optionally with the horizontal-flip test: the model
also sees the mirrored crops, and the mirrored answers are brought back to
the crop's frame (left and right joints swapped by the joint set's
permutation) and averaged with the direct ones before anything is decoded.
`steps.predict_step` (evaluation) and `predictor.Predictor` both call it;
multi-scale search stays in the Predictor, on the host, over what this
returns per scale.

Flip and the heat-map grid (the "one-pixel shift" of pose libraries): with
our convention a cell j of a stride-s map is centred on input pixel
s*j + (s - 1) / 2 (`heatmaps`), and input pixel x mirrors to W - 1 - x. For
W = s*w the mirror of cell j is exactly cell w - 1 - j, so reversing the
map's columns is exact and needs no shift (libraries that place cell j at
s*j shift their flipped maps by one cell to compensate for the 3/4 cell
their convention puts there). When W is not a multiple of s the mirror
lands (W - s*w) / s cells off, and `mirror_heatmaps` interpolates there.
Fine maps live in per-joint windows: the mirrored crop is cut with the
mirrored window centres, so its windows cover the same image pixels
reversed; a window whose rounding put it one pixel off is realigned by that
pixel (`_unflip_fine`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cascade_jax import heatmaps as heatmap_codec
from cascade_jax.model import cascade
from cascade_jax.model import spatial


def mirror_points(points: jax.Array, width: int) -> jax.Array:
  """(x, y) input pixels [..., 2] -> their mirror images, x -> width - 1 - x."""
  return points * jnp.array([-1.0, 1.0]) + jnp.array([width - 1.0, 0.0])


def mirror_heatmaps(maps: jax.Array, input_width: int, stride: int,
                    permutation) -> jax.Array:
  """Heat-maps [B, h, w, J] of a mirrored input, in the original's frame.

  Column j of the result is the mirrored map at the cell whose centre is
  the mirror of cell j's centre (module docstring), and channel k takes
  the mirrored map's channel permutation[k] (the joint set's
  ``flip_permutation``: the mirrored person's left is the original's right).
  Applied twice it gives the maps back (for W = s*w exactly).
  """
  width = maps.shape[-2]
  maps = maps[..., ::-1, :][..., np.asarray(permutation)]
  offset = (input_width - stride * width) / stride  # cells, static
  if offset == 0:
    return maps
  # Column j of the result = reversed column j - offset (edges extended).
  source = np.clip(np.arange(width) - offset, 0, width - 1)
  low = np.floor(source).astype(int)
  high = np.minimum(low + 1, width - 1)
  frac = jnp.asarray((source - low)[:, None], maps.dtype)
  return maps[..., low, :] * (1 - frac) + maps[..., high, :] * frac


def _unflip_fine(fine: jax.Array, origins: jax.Array, mirror_fine: jax.Array,
                 mirror_origins: jax.Array, input_width: int, permutation
                 ) -> tuple[jax.Array, jax.Array]:
  """The mirrored crop's fine maps in the original windows' pixels.

  Window pixel u of joint j is input pixel o_j + u; the mirrored crop's
  joint k = permutation[j] holds it at window pixel W - 1 - o_j - o'_k - u.
  Returns the mirrored maps [B, C, C, J] so placed and a mask [B, 1, C, J]
  of the pixels the mirrored window covers (all of them unless rounding
  moved a window).
  """
  permutation = np.asarray(permutation)
  mirror_fine = mirror_fine[..., permutation]
  mirror_origins = mirror_origins[:, permutation]
  context = fine.shape[2]
  last = input_width - 1 - origins[..., 0] - mirror_origins[..., 0]  # [B, J]
  source = last[:, None, :] - jnp.arange(context)[None, :, None]  # [B, C, J]
  inside = (source >= 0) & (source < context)
  index = jnp.clip(source, 0, context - 1)  # [B, C(u), J]
  placed = jnp.take_along_axis(
      mirror_fine, jnp.broadcast_to(index[:, None], fine.shape), axis=2)
  return placed, inside[:, None]


def predict(apply_fn, params, images: jax.Array, torso: jax.Array | None = None,
            *, is_cascade: bool, stride: int, subpixel: bool = False,
            fusion: str = 'fine', fine_min_peak: float = 0.0,
            cell_margin: float = 0.0, coarse_power: float = 1.0,
            flip_permutation=None,
            return_heatmaps: bool = False) -> dict[str, jax.Array]:
  """Every prediction of the model for crops [B, H, W, 3], in input pixels.

  Args:
    apply_fn: the model's apply (``model.apply`` / ``state.apply_fn``).
    params: its 'params' tree.
    images: float32 [B, H, W, 3] in [0, 1].
    torso: [B, 2] (x, y) torso position, for (and only for) a spatial model.
    is_cascade: the model has a fine part.
    stride: the coarse stride s.
    subpixel: quarter-cell (coarse) / quarter-pixel (fine) refinement.
    fusion, fine_min_peak, cell_margin, coarse_power: the cascade's fusion
      rule (`cascade.locations`).
    flip_permutation: the joint set's ``flip_permutation`` (a tuple, as it
      is static under jit) to run the flip test; None for plain prediction.
    return_heatmaps: also return the coarse 'heatmaps' [B, h, w, J].

  Returns:
    'coarse' [B, J, 2] (argmax of the coarse heat-maps), 'scores' [B, J]
    (their peaks), 'coarse_quarter' and 'coarse_dark' (the same maps decoded
    a quarter cell towards the larger neighbour, and by
    ``heatmaps.decode_dark``); for a cascade 'cascade' [B, J, 2] (the fine
    answer fused with the map its windows were cut at: the coarse one, or
    the MRF's `spatial.window_prior`) and 'fine_scores' [B, J]; with a
    spatial model 'spatial' (argmax of its marginals, where the windows are
    cut) and 'cascade_no_spatial' (the fine model on windows at the coarse
    argmax). With flip every map is the average of the direct and the
    mirrored pass, so every answer and score is the flip test's.
  """
  flip = flip_permutation is not None
  width = images.shape[2]
  batch = images.shape[0]

  def run(crop_centres=None):
    """The model on the crops (and their mirrors, concatenated after)."""
    inputs, kwargs = images, {}
    if torso is not None:
      kwargs['torso'] = torso
    if crop_centres is not None:
      kwargs['crop_centres'] = crop_centres
    if flip:
      inputs = jnp.concatenate([images, images[:, :, ::-1]])
      if torso is not None:
        kwargs['torso'] = jnp.concatenate([torso, mirror_points(torso, width)])
      if crop_centres is not None:
        mirrored = mirror_points(crop_centres, width)
        kwargs['crop_centres'] = jnp.concatenate(
            [crop_centres, mirrored[:, np.asarray(flip_permutation)]])
    return apply_fn({'params': params}, inputs, train=False, **kwargs)

  def average(maps):
    """Direct and mirrored heat-maps [2B, h, w, J] -> their mean [B, ...]."""
    if not flip or maps is None:
      return maps
    return 0.5 * (maps[:batch] + mirror_heatmaps(maps[batch:], width, stride,
                                                 flip_permutation))

  def fuse_windows(outputs, coarse_maps, spatial_maps):
    """A cascade's outputs with the fine maps flip-averaged, for
    `cascade.locations`."""
    if not flip:
      return outputs
    fine = outputs.fine_heatmaps[:batch]
    origins = outputs.window_origins[:batch]
    placed, inside = _unflip_fine(fine, origins, outputs.fine_heatmaps[batch:],
                                  outputs.window_origins[batch:], width,
                                  flip_permutation)
    return cascade.CascadeOutputs(
        coarse_heatmaps=coarse_maps,
        fine_heatmaps=jnp.where(inside, 0.5 * (fine + placed), fine),
        crop_centres=outputs.crop_centres[:batch], window_origins=origins,
        spatial_heatmaps=spatial_maps)

  outputs = run()
  coarse_maps = average(outputs.coarse_heatmaps if is_cascade else outputs)
  joints, scores = heatmap_codec.decode(coarse_maps, stride, subpixel)
  predictions = {
      'coarse': joints, 'scores': scores,
      'coarse_quarter': heatmap_codec.decode(coarse_maps, stride,
                                             subpixel=True)[0],
      'coarse_dark': heatmap_codec.decode_dark(coarse_maps, stride)[0]}
  if return_heatmaps:
    predictions['heatmaps'] = coarse_maps
  if not is_cascade:
    return predictions

  def fuse(cascade_outputs, prior=None):
    return cascade.locations(cascade_outputs, pooling=stride, fusion=fusion,
                             min_peak=fine_min_peak, cell_margin=cell_margin,
                             subpixel=subpixel, coarse_power=coarse_power,
                             prior=prior)

  spatial_maps = average(outputs.spatial_heatmaps)
  coarse_centres, _ = heatmap_codec.decode(coarse_maps, stride)
  window_prior = None  # the coarse maps: the windows' own
  if spatial_maps is not None:
    window_prior = spatial.window_prior(spatial_maps, coarse_maps,
                                        params['spatial']['active'])
    predictions['spatial'], _ = heatmap_codec.decode(spatial_maps, stride,
                                                     subpixel)
    # The same parameters without the MRF: windows at the coarse argmax.
    plain = run(coarse_centres)
    predictions['cascade_no_spatial'], _ = fuse(
        fuse_windows(plain, coarse_maps, spatial_maps))
  if flip:  # windows at the averaged maps' argmax, mirrored for the mirror
    centres = (coarse_centres if spatial_maps is None else
               heatmap_codec.decode(spatial_maps, stride)[0])
    outputs = run(centres)
  predictions['cascade'], predictions['fine_scores'] = fuse(
      fuse_windows(outputs, coarse_maps, spatial_maps), window_prior)
  return predictions
