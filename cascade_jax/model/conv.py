"""The models' 'SAME' convolution, with matmul paths for maps smaller than
the kernel (issue 16; measurements in BUILD_NOTES.md, speed).

XLA CPU's convolution falls off its fast path when the feature map has fewer
pixels than the kernel window: forward, a 9x9 conv 128 -> 512 takes 715 ms
on the paper-size 8x coarse model's 8 x 10 map of bank 2 and 7 ms on 8 x 12;
forward and backward, the demo's 9x9 conv 16 -> 64 takes 16 ms on 6 x 6 maps
at batch 16 and 12 ms on 12 x 12. Two matmul paths replace it there:

  'patches' (``matmul_conv``): im2col patches times the kernel matrix; the
    same sums take 6.5 ms and 2.5 ms. The backward pass is written by hand
    (``_matmul_conv_bwd``): under autodiff the patches' gradient is as slow
    as the convolution it replaces.
  'dense' (``dense_conv``): one product with the convolution's whole
    [H W C, H W O] matrix, for maps small enough that the matrix is small:
    the demo fine model's 7x7 convs on 5 x 5 windows at batch 16 x 11 joints
    take 0.9 ms forward + backward, against 20-38 ms as patches.

``conv2d_same`` chooses the path per shape with ``conv_path``; ``Conv``
is ``flax.linen.Conv`` (stride 1, 'SAME', same parameter names, shapes and
initialisation, so checkpoints load either way) on top of it.
"""

from __future__ import annotations

from collections.abc import Sequence
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


# The largest convolution matrix, in entries, that the dense path builds
# (2 MB in float32): the demo fine model's (at most 0.33M) fit; its coarse
# model's 6 x 6 maps (1.3M) were no faster dense than as patches in its
# training step, and the paper-size shapes (1M to 420M) stay patches.
DENSE_MAX_ENTRIES = 2**19


def conv_path(height: int, width: int, kernel_size: Sequence[int],
              in_channels: int, out_channels: int) -> str:
  """How a map of height x width is convolved: 'xla', 'dense' or 'patches'.

  XLA's convolution unless the map has fewer pixels than the kernel window,
  where XLA CPU's convolution measured 3-100x slower (6 x 6, 4 x 4, 3 x 3 in
  the demo, 8 x 10 and 8 x 8 at paper size); on 7 x 7 maps under a 7x7 kernel
  and on anything larger it was as fast or faster. Below that size, 'dense'
  (one matrix product with the convolution's [H W C, H W O] matrix) when
  that matrix has at most ``DENSE_MAX_ENTRIES`` entries, else 'patches'
  (im2col patches @ kernel).
  """
  if height * width >= kernel_size[0] * kernel_size[1]:
    return 'xla'
  if dense_entries(height, width, in_channels,
                   out_channels) <= DENSE_MAX_ENTRIES:
    return 'dense'
  return 'patches'


def dense_entries(height: int, width: int, in_channels: int,
                  out_channels: int) -> int:
  """Entries of the dense path's [H W C, H W O] convolution matrix."""
  return (height * width)**2 * in_channels * out_channels


def _same_padding(size: int) -> tuple[int, int]:
  """'SAME' padding of a stride-1 kernel of this size: (before, after)."""
  return (size - 1) // 2, size // 2


def _patches(x: jax.Array, kernel_size: tuple[int, int]) -> jax.Array:
  """im2col: [B, H, W, C] -> [B, H, W, kh * kw * C], ordered (i, j, c) as a
  HWIO kernel reshaped to [kh * kw * C, O]; zeros outside the map.

  One loop over the taps, each writing its shifted map into the patches:
  XLA compiles the loop's body once, not a slice per tap. The demo's joint
  step compiled in 10.0 s with the taps as slices and 8.3 s with the loop,
  at the same step time (BUILD_NOTES.md, issue 16).
  """
  (kh, kw), (batch, height, width, channels) = kernel_size, x.shape
  padded = jnp.pad(x, ((0, 0), _same_padding(kh), _same_padding(kw), (0, 0)))

  def write_tap(tap, patches):
    shifted = jax.lax.dynamic_slice(padded, (0, tap // kw, tap % kw, 0),
                                    (batch, height, width, channels))
    return jax.lax.dynamic_update_slice(patches, shifted,
                                        (0, 0, 0, tap * channels))

  return jax.lax.fori_loop(
      0, kh * kw, write_tap,
      jnp.zeros((batch, height, width, kh * kw * channels), x.dtype))


def _col2im(columns: jax.Array, kernel_size: tuple[int, int]) -> jax.Array:
  """The transpose of ``_patches``: [B, H, W, kh * kw * C] -> [B, H, W, C],
  each tap's column added back at the input pixel it was read from.

  One loop over the taps in (i, j) order, each adding its column into its
  window of a padded sum in place: the additions of summing one padded copy
  per tap, in the same order, without the copies' zeros. The demo's joint
  step, A/B in one process: 282 -> 254 ms, the same parameters bit for bit.
  """
  kh, kw = kernel_size
  batch, height, width, _ = columns.shape
  (top, bottom), (left, right) = _same_padding(kh), _same_padding(kw)
  columns = columns.reshape(batch, height, width, kh * kw, -1)
  channels = columns.shape[-1]

  def add_tap(tap, total):
    corner = (0, tap // kw, tap % kw, 0)
    window = jax.lax.dynamic_slice(total, corner,
                                   (batch, height, width, channels))
    column = jax.lax.dynamic_index_in_dim(columns, tap, 3, keepdims=False)
    return jax.lax.dynamic_update_slice(total, window + column, corner)

  total = jax.lax.fori_loop(
      0, kh * kw, add_tap,
      jnp.zeros((batch, height + top + bottom, width + left + right,
                 channels), columns.dtype))
  return total[:, top:top + height, left:left + width]


def _matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
  patches = _patches(x, kernel.shape[:2])
  return jnp.einsum('bhwk,ko->bhwo', patches,
                    kernel.reshape(-1, kernel.shape[-1]))


@jax.custom_vjp
def matmul_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """'SAME' stride-1 convolution of x [B, H, W, C] with a HWIO kernel as
  patches @ kernel; equal to ``lax.conv_general_dilated`` up to rounding."""
  return _matmul(x, kernel)


def _matmul_conv_fwd(x, kernel):
  return _matmul(x, kernel), (x, kernel)


def _matmul_conv_bwd(residuals, grad_out):
  """Both gradients as matmuls: d kernel = patches^T @ d out, and d x the
  col2im of d out @ kernel^T (no patches of d out, no transposed conv)."""
  x, kernel = residuals
  kernel_size = kernel.shape[:2]
  grad_kernel = jnp.einsum('bhwk,bhwo->ko', _patches(x, kernel_size),
                           grad_out).reshape(kernel.shape)
  grad_columns = jnp.einsum('bhwo,ko->bhwk', grad_out,
                            kernel.reshape(-1, kernel.shape[-1]))
  grad_x = _col2im(grad_columns, kernel_size)
  return grad_x.astype(x.dtype), grad_kernel.astype(kernel.dtype)


matmul_conv.defvjp(_matmul_conv_fwd, _matmul_conv_bwd)


@functools.lru_cache(maxsize=None)
def _tap_index(height: int, width: int, kh: int, kw: int) -> np.ndarray:
  """[H W, H W] int: the kernel tap (i * kw + j) that weighs input pixel p
  (row-major) in output pixel q of a 'SAME' convolution, or kh * kw where
  none does (p outside q's window)."""
  rows, cols = np.divmod(np.arange(height * width), width)
  i = rows[:, None] - rows[None, :] + _same_padding(kh)[0]
  j = cols[:, None] - cols[None, :] + _same_padding(kw)[0]
  inside = (i >= 0) & (i < kh) & (j >= 0) & (j < kw)
  return np.where(inside, i * kw + j, kh * kw)


def dense_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """'SAME' stride-1 convolution of x [B, H, W, C] with a HWIO kernel as one
  matrix product: x [B, H W C] @ the convolution's block-Toeplitz matrix
  [H W C, H W O], gathered from the kernel's taps and zeros. On a map
  smaller than the kernel it does fewer multiply-adds than the patches (no
  padding taps) in one well-shaped product; autodiff's gradients are two
  more products and the gather's scatter-add back onto the taps."""
  batch, height, width, channels = x.shape
  kh, kw, _, features = kernel.shape
  taps = jnp.concatenate([kernel.reshape(kh * kw, channels, features),
                          jnp.zeros((1, channels, features), kernel.dtype)])
  matrix = taps[_tap_index(height, width, kh, kw)]  # [P, Q, C, O]
  matrix = matrix.transpose(0, 2, 1, 3).reshape(height * width * channels,
                                                height * width * features)
  return (x.reshape(batch, -1) @ matrix).reshape(batch, height, width,
                                                 features)


def xla_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """'SAME' stride-1 convolution by XLA (NHWC, HWIO)."""
  return jax.lax.conv_general_dilated(
      x, kernel, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


PATHS = {'xla': xla_conv, 'dense': dense_conv, 'patches': matmul_conv}


def conv2d_same(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """'SAME' stride-1 convolution [B, H, W, C] * [kh, kw, C, O] -> [B, H, W, O]
  on the path ``conv_path`` chooses for this shape."""
  return PATHS[conv_path(*x.shape[1:3], kernel.shape[:2], *kernel.shape[2:])](
      x, kernel)


class Conv(nn.Module):
  """Stride-1 'SAME' convolution with bias, as ``nn.Conv`` (parameters
  'kernel' [kh, kw, C, O] LeCun-normal and 'bias' [O] zeros, float32; inputs
  and parameters cast to ``dtype``), computed by ``conv2d_same``.

  Attributes:
    features: output channels O.
    kernel_size: (kh, kw).
    dtype: computation dtype.
  """
  features: int
  kernel_size: Sequence[int]
  dtype: jax.typing.DTypeLike = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param(
        'kernel', nn.initializers.lecun_normal(),
        (*self.kernel_size, x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,),
                      jnp.float32)
    y = conv2d_same(x.astype(self.dtype), kernel.astype(self.dtype))
    return y + bias.astype(self.dtype)
