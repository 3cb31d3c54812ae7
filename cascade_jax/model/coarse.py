"""Coarse heat-map model, a multi-resolution ConvNet (paper Sec. 3.1, Fig. 2).

images [B, H, W, 3] -> Gaussian pyramid (1, 1/2, 1/4) -> LCN per level ->
one conv bank per level (own weights) -> nearest upsampling to bank 0's
resolution and sum -> SpatialDropout -> three 1x1 convs -> heat-maps
[B, H / s, W / s, J], s the pooling factor (4, 8 or 16).

H and W need only be multiples of s (and of 4 for the pyramid): FLIC's
240 x 320 is not a multiple of 4 * 8, so a lower bank pools an odd-sized map
in ceil mode and its upsampled output, one cell too large, is cropped at the
bottom / right. Cells stay aligned: bank l's cell i covers input pixels
[s * 2**l * i, s * 2**l * (i + 1) - 1], exactly the bank-0 cells it is
copied to.
"""

from __future__ import annotations

from collections.abc import Sequence
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from cascade_jax.model import conv
from cascade_jax.model import layers

POOLING_FACTORS = (4, 8, 16)


class CoarseBank(nn.Module):
  """One resolution bank: four 'SAME' convs with ReLU and 2x2 max pooling.

  conv5x5(c1), pool, conv5x5(c2), pool, conv5x5(c3), [pool if s >= 8],
  conv9x9(c4), [pool if s == 16]: the output stride is s.

  Attributes:
    widths: output channels (c1, c2, c3, c4) of the four convs.
    pooling: total pooling factor s, one of 4, 8, 16.
    dtype: computation dtype of the convs (parameters stay float32).
  """
  widths: Sequence[int]
  pooling: int
  dtype: jax.typing.DTypeLike = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Runs the bank on one LCN pyramid level.

    Args:
      x: [B, h, w, C].

    Returns:
      (output [B, ceil(h / s), ceil(w / s), c4], conv1 [B, h, w, c1],
      conv2 [B, ceil(h / 2), ceil(w / 2), c2]); conv1 and conv2 are
      post-ReLU, before pooling: the features the fine model crops.
      Pooling is in ceil mode (see ``layers.max_pool_2x2``).
    """
    c1, c2, c3, c4 = self.widths
    bank_conv = functools.partial(conv.Conv, dtype=self.dtype)
    conv1 = nn.relu(bank_conv(c1, (5, 5), name='conv1')(x))
    conv2 = nn.relu(
        bank_conv(c2, (5, 5), name='conv2')(layers.max_pool_2x2(conv1)))
    x = nn.relu(bank_conv(c3, (5, 5), name='conv3')(layers.max_pool_2x2(conv2)))
    if self.pooling >= 8:
      x = layers.max_pool_2x2(x)
    x = nn.relu(bank_conv(c4, (9, 9), name='conv4')(x))
    if self.pooling == 16:
      x = layers.max_pool_2x2(x)
    return x, conv1, conv2


class CoarseHeatmapModel(nn.Module):
  """Multi-resolution coarse heat-map regressor (paper Fig. 2).

  Paper widths: bank_widths (128, 128, 128, 512), head_widths (256, 256).

  Attributes:
    num_joints: J, heat-maps produced.
    pooling: output stride s, one of 4, 8, 16.
    bank_widths: (c1, c2, c3, c4), the conv widths of every bank.
    head_widths: widths of the hidden 1x1 convs, (h1, h2) in the paper.
    dropout_rate: SpatialDropout rate before the first 1x1 conv.
    num_levels: pyramid levels (banks); the paper uses 3.
    lcn_kernel_size: width of the LCN Gaussian window.
    dtype: computation dtype of the convs, e.g. bfloat16 for mixed precision
      on GPU / TPU. Parameters, the pyramid and LCN statistics and the
      heat-maps stay float32 (the J-wide output conv computes in float32).
  """
  num_joints: int
  pooling: int = 8
  bank_widths: Sequence[int] = (128, 128, 128, 512)
  head_widths: Sequence[int] = (256, 256)
  dropout_rate: float = 0.5
  num_levels: int = 3
  lcn_kernel_size: int = 9
  dtype: jax.typing.DTypeLike = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool,
               return_features: bool = False):
    """Predicts coarse heat-maps.

    Args:
      images: [B, H, W, 3] float; H and W multiples of pooling and of
        2**(num_levels - 1).
      train: enables SpatialDropout (needs a 'dropout' rng).
      return_features: also return the banks' conv1 / conv2 features.

    Returns:
      heatmaps [B, H / s, W / s, J] float32; with ``return_features``,
      (heatmaps, features), features a list with one (conv1, conv2) pair per
      bank l: conv1 [B, H / 2**l, W / 2**l, c1],
      conv2 [B, ceil(H / 2**(l+1)), ceil(W / 2**(l+1)), c2], both post-ReLU,
      in ``dtype``.
    """
    self._check_input(images.shape)
    out_height = images.shape[1] // self.pooling
    out_width = images.shape[2] // self.pooling
    merged = None
    features = []
    for level, pyramid_level in enumerate(
        layers.gaussian_pyramid(images.astype(jnp.float32), self.num_levels)):
      lcn = layers.local_contrast_normalize(pyramid_level, self.lcn_kernel_size)
      out, conv1, conv2 = CoarseBank(self.bank_widths, self.pooling,
                                     self.dtype, name=f'bank{level}')(lcn)
      features.append((conv1, conv2))
      out = layers.upsample_nearest(out, 2**level)[:, :out_height, :out_width]
      merged = out if merged is None else merged + out
    x = layers.SpatialDropout(self.dropout_rate)(merged,
                                                 deterministic=not train)
    for i, width in enumerate(self.head_widths):
      x = nn.relu(conv.Conv(width, (1, 1), dtype=self.dtype,
                            name=f'head{i}')(x))
    heatmaps = conv.Conv(self.num_joints, (1, 1), dtype=jnp.float32,
                         name='heatmaps')(x)
    return (heatmaps, features) if return_features else heatmaps

  def _check_input(self, shape):
    if self.pooling not in POOLING_FACTORS:
      raise ValueError(f'CoarseHeatmapModel.pooling must be one of '
                       f'{POOLING_FACTORS}, got {self.pooling}.')
    if len(self.bank_widths) != 4:
      raise ValueError(f'CoarseHeatmapModel.bank_widths needs 4 widths '
                       f'(c1, c2, c3, c4), got {tuple(self.bank_widths)}.')
    if len(shape) != 4:
      raise ValueError(f'CoarseHeatmapModel expects images [B, H, W, C], '
                       f'got shape {shape}.')
    divisor = math.lcm(self.pooling, 2**(self.num_levels - 1))
    height, width = shape[1:3]
    if height % divisor or width % divisor:
      raise ValueError(
          f'CoarseHeatmapModel input images are {height} x {width} (H x W, '
          f'shape {shape}) but H and W must be multiples of {divisor}: of '
          f'pooling={self.pooling} (whole heat-map cells) and of '
          f'2**(num_levels - 1) with num_levels={self.num_levels} (the '
          f'pyramid). Crop or resize the input, e.g. to '
          f'{height // divisor * divisor} x {width // divisor * divisor}.')


def coarse_part(model: nn.Module) -> CoarseHeatmapModel:
  """The coarse model of a cascade ``model`` that carries the coarse fields
  (num_joints, pooling, widths, dropout, levels, LCN, dtype); named 'coarse'
  so its parameters are a drop-in coarse checkpoint."""
  return CoarseHeatmapModel(
      num_joints=model.num_joints, pooling=model.pooling,
      bank_widths=model.bank_widths, head_widths=model.head_widths,
      dropout_rate=model.dropout_rate, num_levels=model.num_levels,
      lcn_kernel_size=model.lcn_kernel_size, dtype=model.dtype, name='coarse')
