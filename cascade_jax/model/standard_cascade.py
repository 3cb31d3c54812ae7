"""Baseline "standard cascade" (paper Sec. 5, Fig. 13).

A fine model that crops the INPUT (each level of the coarse model's LCN
Gaussian pyramid) rather than the coarse model's features, trained
independently of the coarse model: it takes images and crop centres (the
predictions of a separately trained coarse model, or jittered ground truth).
Its architecture is ours with the image pyramid as banks; since 3-channel
inputs make its first convs much smaller than ours on 128-channel features,
each bank gets one extra conv7x7, whose width ``matched_extra_width`` chooses
so that both fine models have (nearly) the same number of parameters, as in
the paper. Windows are cut as ours (``crop``), so both models see the same
input pixels for the same centres.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cascade_jax import heatmaps as heatmap_codec
from cascade_jax.model import cascade
from cascade_jax.model import coarse
from cascade_jax.model import crop
from cascade_jax.model import fine
from cascade_jax.model import layers


class StandardCascadeFineModel(nn.Module):
  """Fine heat-maps from crops of the LCN image pyramid.

  Per pyramid level: conv7x7(w) + ReLU for w in (*bank_widths[:-1],
  extra_width, bank_widths[-1]), then as ``fine.FineHeatmapModel``.

  Attributes:
    num_joints: J.
    bank_widths: our fine model's per-bank widths.
    hidden_width: our fine model's shared 1x1 width.
    extra_width: width of the extra conv (``matched_extra_width``).
    num_levels: pyramid levels, as the coarse model.
    lcn_kernel_size: LCN window, as the coarse model.
    context: crop window in input pixels, even.
    dtype: computation dtype of the convs (``fine.FineHeatmapModel``).
    hint_stride: stride of the optional ``hint`` (the coarse pooling), as
      ``fine.FineHeatmapModel``.
  """
  num_joints: int
  extra_width: int
  bank_widths: Sequence[int] = (64, 64)
  hidden_width: int = 128
  num_levels: int = 3
  lcn_kernel_size: int = 9
  context: int = crop.DEFAULT_CONTEXT
  dtype: jax.typing.DTypeLike = jnp.float32
  hint_stride: int = 0

  @nn.compact
  def __call__(self, images: jax.Array, origins: jax.Array,
               hint: jax.Array | None = None) -> jax.Array:
    """Fine heat-maps [B, context, context, J] in window pixels.

    Args:
      images: [B, H, W, 3]; H and W multiples of 2**(num_levels - 1).
      origins: [B, J, 2] int32 window origins in input pixels
        (``crop.window_origins``).
      hint: optional [B, J, n, n, C] coarse heat-map windows
        (``cascade.fine_hint``), one more bank as in our fine model.
    """
    crops = [
        crop.crop_windows(
            layers.local_contrast_normalize(level, self.lcn_kernel_size),
            origins, self.context, 2**index)
        for index, level in enumerate(
            layers.gaussian_pyramid(images.astype(jnp.float32),
                                    self.num_levels))]
    widths = (*self.bank_widths[:-1], self.extra_width, self.bank_widths[-1])
    return fine.FineHeatmapModel(
        self.num_joints, widths, self.hidden_width, dtype=self.dtype,
        hint_stride=self.hint_stride, name='fine')(crops, origins, hint)


class StandardCascadeModel(nn.Module):
  """Coarse model + an image-cropping fine model, trained greedily (Fig. 13).

  The same outputs as ``cascade.CascadeModel``, so the stage schedule and the
  evaluation treat both alike; only the fine model's input differs: crops of
  the image pyramid at the coarse prediction instead of the coarse features.
  Trained with the 'coarse' then 'fine' stages and no 'joint' stage, the two
  models are trained independently (the coarse model is frozen while the fine
  one trains).

  Attributes:
    coarse: the coarse model's fields, as ``CoarseHeatmapModel``.
    fine_bank_widths, fine_hidden_width, extra_width, context, dtype: as
      ``StandardCascadeFineModel``.
    fine_heatmap_input, fine_other_joints_input: the coarse heat-map input
      of ``cascade.CascadeModel`` (not in the paper), so that a cascade with
      it is compared with a baseline that has it too: the two fine models
      then differ only in what they crop. The hint is one more bank, with
      the extra conv as the others; ``matched_extra_width`` counts it.
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
  extra_width: int = 64
  context: int = crop.DEFAULT_CONTEXT
  dtype: jax.typing.DTypeLike = jnp.float32
  fine_heatmap_input: bool = False
  fine_other_joints_input: bool = False

  @nn.compact
  def __call__(self, images: jax.Array, train: bool,
               crop_centres: jax.Array | None = None) -> cascade.CascadeOutputs:
    coarse_heatmaps = coarse.coarse_part(self)(images, train)
    if crop_centres is None:
      crop_centres, _ = heatmap_codec.decode(coarse_heatmaps, self.pooling)
    crop_centres = jax.lax.stop_gradient(crop_centres)
    origins = crop.window_origins(crop_centres, images.shape[1:3],
                                  self.context)
    hint = cascade.fine_hint(coarse_heatmaps, origins, self.context,
                             self.pooling, self.fine_heatmap_input,
                             self.fine_other_joints_input)
    fine_heatmaps = StandardCascadeFineModel(
        num_joints=self.num_joints, extra_width=self.extra_width,
        bank_widths=self.fine_bank_widths, hidden_width=self.fine_hidden_width,
        num_levels=self.num_levels, lcn_kernel_size=self.lcn_kernel_size,
        context=self.context, dtype=self.dtype, hint_stride=self.pooling,
        name='fine')(images, origins, hint)
    return cascade.CascadeOutputs(coarse_heatmaps, fine_heatmaps, crop_centres,
                                  origins)


def _num_params(init_fn, *abstract_args) -> int:
  shapes = jax.eval_shape(init_fn, *abstract_args)
  return sum(leaf.size for leaf in jax.tree.leaves(shapes['params']))


# Any stride gives a hint bank the same parameters; this one sizes the
# abstract hint windows the counts below trace.
_COUNTING_HINT_STRIDE = 8


def _hint(num_joints, context, hint_channels):
  """An abstract hint of ``hint_channels`` channels, or None for 0."""
  if not hint_channels:
    return None
  cells = crop.window_cells(context, _COUNTING_HINT_STRIDE)
  return jax.ShapeDtypeStruct((1, num_joints, cells, cells, hint_channels),
                              jnp.float32)


def _ours(num_joints, coarse_widths, num_levels, bank_widths, hidden_width,
          context, hint_channels) -> int:
  """Parameters of our fine model on the crops of coarse (c1, c2) features."""
  c1, c2 = coarse_widths
  channels = [c1] + [c1 + c2] * (num_levels - 1) + [c2]
  crops = [jax.ShapeDtypeStruct(
      (1, num_joints, crop.window_cells(context, 2**r),
       crop.window_cells(context, 2**r), channels[r]),
      jnp.float32) for r in range(num_levels + 1)]
  origins = jax.ShapeDtypeStruct((1, num_joints, 2), jnp.int32)
  model = fine.FineHeatmapModel(num_joints, bank_widths, hidden_width,
                                hint_stride=_COUNTING_HINT_STRIDE)
  return _num_params(lambda x, o, h: model.init(jax.random.key(0), x, o, h),
                     crops, origins,
                     _hint(num_joints, context, hint_channels))


def _standard(num_joints, extra_width, num_levels, bank_widths, hidden_width,
              context, hint_channels) -> int:
  """Parameters of the baseline with an extra conv of ``extra_width``."""
  model = StandardCascadeFineModel(num_joints, extra_width, bank_widths,
                                   hidden_width, num_levels, context=context,
                                   hint_stride=_COUNTING_HINT_STRIDE)
  images = jax.ShapeDtypeStruct((1, context, context, 3), jnp.float32)
  origins = jax.ShapeDtypeStruct((1, num_joints, 2), jnp.int32)
  return _num_params(lambda x, o, h: model.init(jax.random.key(0), x, o, h),
                     images, origins,
                     _hint(num_joints, context, hint_channels))


def matched_extra_width(num_joints: int, coarse_widths: Sequence[int],
                        num_levels: int = 3,
                        bank_widths: Sequence[int] = (64, 64),
                        hidden_width: int = 128,
                        context: int = crop.DEFAULT_CONTEXT,
                        hint_channels: int = 0) -> int:
  """Extra-conv width giving the baseline our fine model's parameter count.

  The count is affine in the width; the nearest integer is returned.

  Args:
    num_joints: J.
    coarse_widths: (c1, c2), the coarse conv1 / conv2 widths we crop.
    num_levels: pyramid levels.
    bank_widths: fine per-bank widths (both models).
    hidden_width: fine shared 1x1 width (both models).
    context: window in input pixels.
    hint_channels: channels of the coarse heat-map input (0 none, 1 the
      joint's own map, 2 with the other joints'); the baseline's hint bank
      has the extra conv too, as its other banks.

  Returns:
    The extra width, at least 1.
  """
  target = _ours(num_joints, coarse_widths, num_levels, bank_widths,
                 hidden_width, context, hint_channels)
  one, two = (_standard(num_joints, w, num_levels, bank_widths, hidden_width,
                        context, hint_channels) for w in (1, 2))
  width = round(1 + (target - one) / (two - one))
  if width < 1:
    raise ValueError(
        f'The standard cascade without an extra conv already has more '
        f'parameters ({one} with a 1-wide extra conv) than our fine model '
        f'({target}): no extra width matches.')
  return width


def parameter_counts(num_joints: int, coarse_widths: Sequence[int],
                     num_levels: int = 3,
                     bank_widths: Sequence[int] = (64, 64),
                     hidden_width: int = 128,
                     context: int = crop.DEFAULT_CONTEXT,
                     hint_channels: int = 0) -> dict[str, int]:
  """Parameter counts of both fine models (the coarse models are the same).

  Args:
    num_joints, coarse_widths, num_levels, bank_widths, hidden_width,
      context, hint_channels: as ``matched_extra_width``.

  Returns:
    {'ours': our fine model, 'standard_cascade': the baseline with the
    matched extra conv, 'extra_width': that conv's width}.
  """
  fields = (num_levels, bank_widths, hidden_width, context, hint_channels)
  extra = matched_extra_width(num_joints, coarse_widths, *fields)
  return {
      'ours': _ours(num_joints, coarse_widths, *fields),
      'standard_cascade': _standard(num_joints, extra, *fields),
      'extra_width': extra,
  }
