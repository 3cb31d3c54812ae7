"""Fine heat-map model (paper Sec. 4.1, Figs. 7, 8), its targets and decoding.

A Siamese sub-network, one instance per joint with weights shared by all
joints (``nn.vmap`` over the joint axis, params broadcast), turns each
joint's crops into features at the window's input-pixel resolution; a 1x1
conv with one unshared weight vector per joint then gives that joint's fine
heat-map. Heat-maps are channels-last [B, context, context, J] in window
pixels: window pixel (u, v) is input pixel origin + (u, v) (see ``crop``).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cascade_jax import heatmaps as heatmap_codec
from cascade_jax.model import conv
from cascade_jax.model import crop

# Target sigma in window (= input) pixels: the paper's 1.5 px (Sec. 3.3),
# here at the resolution the fine model regresses.
FINE_SIGMA = 1.5


class FineBranch(nn.Module):
  """The sub-network of one joint (paper Fig. 8).

  Per input bank r: conv7x7(w) + ReLU for each w in bank_widths, bilinear
  upsampling by context / size_r to the canonical input-pixel resolution;
  banks summed; conv1x1(hidden_width) + ReLU. 'SAME' padding throughout.

  Bilinear, not nearest (the paper does not say): nearest upsampling makes
  the lower banks' contribution constant over k x k blocks, and where the
  full-resolution bank adds little the argmax ties inside a block and takes
  its top-left pixel, a -0.5 px bias in x and y (BUILD_NOTES, cascade).

  Attributes:
    bank_widths: widths of the convs applied to every bank, in order; the
      paper's (64, 64).
    hidden_width: width of the 1x1 conv after the sum; the paper's 128.
    kernel_size: spatial size of the bank convs; the paper's 7.
    dtype: computation dtype of the convs (parameters stay float32).
    hint_stride: stride of the optional ``hint`` input (the coarse pooling);
      read only when a hint is given.
  """
  bank_widths: Sequence[int] = (64, 64)
  hidden_width: int = 128
  kernel_size: int = 7
  dtype: jax.typing.DTypeLike = jnp.float32
  hint_stride: int = 0

  @nn.compact
  def __call__(self, crops: Sequence[jax.Array], origins: jax.Array,
               hint: jax.Array | None = None) -> jax.Array:
    """Runs one joint's crops.

    Args:
      crops: per bank r, [B, n_r, n_r, C_r] at stride 2**r
        (``crop.crop_windows``); n_0 = context.
      origins: [B, 2] (x, y) window origins of the crops.
      hint: optional [B, n, n, C] window of the coarse heat-maps
        (``cascade.fine_hint``) at ``hint_stride``: one more bank (the same
        convs, its own weights).

    Returns:
      [B, context, context, hidden_width], post-ReLU, in ``dtype``: pixel
      (u, v) is input pixel origin + (u, v) for every bank.
    """
    context = crops[0].shape[1]

    def bank_convs(x, prefix):  # The 7x7 convs, each input its own weights.
      for i, width in enumerate(self.bank_widths):
        x = nn.relu(conv.Conv(width, (self.kernel_size, self.kernel_size),
                              dtype=self.dtype, name=f'{prefix}_conv{i}')(x))
      return x

    merged = bank_convs(crops[0], 'bank0')
    for bank, x in enumerate(crops[1:], start=1):
      merged += crop.upsample_window(bank_convs(x, f'bank{bank}'), origins,
                                     context, 2**bank)
    if hint is not None:
      if self.hint_stride <= 0:
        raise ValueError('a heat-map hint was given to a fine model with '
                         f'hint_stride {self.hint_stride}: set it to the '
                         'coarse pooling')
      merged += crop.upsample_window(bank_convs(hint, 'hint'), origins,
                                     context, self.hint_stride)
    return nn.relu(conv.Conv(self.hidden_width, (1, 1), dtype=self.dtype,
                             name='hidden')(merged))


# One FineBranch applied to every joint (axis 1) with the same parameters:
# the parameter count does not depend on J.
SiameseBranches = nn.vmap(
    FineBranch, in_axes=1, out_axes=1,
    variable_axes={'params': None}, split_rngs={'params': False})


class FineHeatmapModel(nn.Module):
  """Siamese fine heat-map regressor with an unshared per-joint 1x1 conv.

  Parameters: the shared branch (independent of J) + J * (hidden_width + 1).

  Attributes:
    num_joints: J.
    bank_widths: see ``FineBranch``.
    hidden_width: see ``FineBranch``.
    kernel_size: see ``FineBranch``.
    dtype: see ``FineBranch``; the per-joint 1x1 conv computes in float32.
    hint_stride: see ``FineBranch``.
  """
  num_joints: int
  bank_widths: Sequence[int] = (64, 64)
  hidden_width: int = 128
  kernel_size: int = 7
  dtype: jax.typing.DTypeLike = jnp.float32
  hint_stride: int = 0

  @nn.compact
  def __call__(self, crops: Sequence[jax.Array], origins: jax.Array,
               hint: jax.Array | None = None) -> jax.Array:
    """Fine heat-maps from per-joint crops.

    Args:
      crops: per bank r, [B, J, n_r, n_r, C_r] at stride 2**r
        (``crop.crop_features``).
      origins: [B, J, 2] (x, y) window origins of the crops.
      hint: optional [B, J, n, n, C] windows of the coarse heat-maps
        (``cascade.fine_hint``), with ``hint_stride`` set.

    Returns:
      [B, context, context, J] float32 fine heat-maps in window pixels.
    """
    num_joints = crops[0].shape[1]
    if num_joints != self.num_joints:
      raise ValueError(f'FineHeatmapModel.num_joints = {self.num_joints} but '
                       f'the crops have {num_joints} joints (axis 1).')
    features = SiameseBranches(self.bank_widths, self.hidden_width,
                               self.kernel_size, self.dtype, self.hint_stride,
                               name='siamese')(list(crops), origins, hint)
    # Unshared 1x1 conv: joint j's own weights [hidden] and bias.
    kernel = self.param('joint_kernel',
                        nn.initializers.lecun_normal(in_axis=-1, out_axis=-2),
                        (self.num_joints, self.hidden_width))
    bias = self.param('joint_bias', nn.initializers.zeros_init(),
                      (self.num_joints,))
    return (jnp.einsum('bjyxc,jc->byxj', features.astype(jnp.float32), kernel)
            + bias)


def fine_targets(joints: jax.Array, visible: jax.Array, origins: jax.Array,
                 context: int, sigma: float = FINE_SIGMA,
                 mask_outside: bool = False) -> tuple[jax.Array, jax.Array]:
  """Gaussian fine targets: the full-image target cropped at each window.

  Paper eq. 2: a window whose joint lies outside it gets the crop of the
  joint's Gaussian, all zero (or its tail) and weight 1, which teaches the
  fine model to stay low where the joint is not, so that its peak height
  says whether the window holds the joint. Only unlabelled joints are
  masked. With ``mask_outside`` windows without their joint get weight 0
  too (the behaviour before issue 13, kept as an option: BUILD_NOTES).

  Computed in JAX inside the train step: the windows follow the model's own
  coarse predictions. Same conventions as ``heatmaps.encode`` at stride 1.

  Args:
    joints: [B, J, 2] (x, y) ground truth in input pixels.
    visible: [B, J] labelled joints.
    origins: [B, J, 2] int window origins (``crop.window_origins``).
    context: window size in pixels.
    sigma: Gaussian standard deviation in window pixels.
    mask_outside: weight 0 for a joint outside its window
      ([-0.5, context - 0.5] in window pixels).

  Returns:
    targets [B, context, context, J] (zero where the weight is 0) and
    weights [B, J] float32: 1 for labelled joints (and, with
    ``mask_outside``, inside their window), else 0.
  """
  local = joints - origins  # [B, J, 2] window pixels.
  grid = jnp.arange(context, dtype=jnp.float32)
  dx = grid[None, None, :, None] - local[:, None, None, :, 0]  # [B, 1, W, J]
  dy = grid[None, :, None, None] - local[:, None, None, :, 1]  # [B, H, 1, J]
  targets = jnp.exp(-(dx**2 + dy**2) / (2.0 * sigma**2))
  weights = visible > 0
  if mask_outside:
    weights &= jnp.all((local >= -0.5) & (local <= context - 0.5), axis=-1)
  weights = weights.astype(jnp.float32)
  return targets * weights[:, None, None, :], weights


def decode_locations(fine_heatmaps: jax.Array, origins: jax.Array,
                     subpixel: bool = False) -> tuple[jax.Array, jax.Array]:
  """Fine locations: window origin + fine argmax, and the fine peaks.

  Equivalently coarse location + offset, the offset being the argmax
  relative to the window centre.

  Args:
    fine_heatmaps: [B, context, context, J].
    origins: [B, J, 2] window origins in input pixels.
    subpixel: quarter-pixel refinement of the argmax (``heatmaps.decode``).

  Returns:
    ([B, J, 2] float32 (x, y) in input pixels, [B, J] peak values: about 1
    where the window holds the joint, about 0 where it does not, as E2
    trains them).
  """
  peaks, scores = heatmap_codec.decode(fine_heatmaps, stride=1,
                                       subpixel=subpixel)
  return origins + peaks, scores
