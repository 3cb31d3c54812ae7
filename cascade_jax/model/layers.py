"""Fixed and generic layers of the coarse and fine models (paper Sec. 3-4).

Everything works on channels-last images or feature maps, [B, H, W, C].

  * ``gaussian_pyramid``: the 3-level RGB input pyramid (scales 1, 1/2, 1/4).
  * ``local_contrast_normalize``: Torch's SpatialContrastiveNormalization
    (subtractive then divisive, one Gaussian kernel shared by all channels).
  * ``max_pool_2x2`` / ``upsample_nearest``: the coarse model's pooling and
    merging steps (the fine model's bilinear merging is
    ``crop.upsample_window``).
  * ``SpatialDropout``: dropout of whole feature maps (paper Sec. 3.2).

The pyramid and the LCN have no parameters: they are fixed pre-processing
inside the model, so callers feed it raw images.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# Torch's image.gaussian: sigma is a fraction of the kernel width.
_TORCH_GAUSSIAN_SIGMA = 0.25
# Torch's SpatialDivisiveNormalization threshold on the local std.
_LCN_EPSILON = 1e-4
# Even 4-tap binomial kernel: with stride 2 the output pixel i is centred on
# input x = 2i + 0.5, the cell-centre convention of a stride-2 heat-map
# (DESIGN section 5), so pyramid levels and pooled banks line up exactly.
_PYRAMID_TAPS = np.array([1.0, 3.0, 3.0, 1.0]) / 8.0


def gaussian_kernel_1d(size: int, sigma: float | None = None) -> np.ndarray:
  """Centred 1-D Gaussian taps [size], sum 1; sigma defaults to size / 4."""
  sigma = _TORCH_GAUSSIAN_SIGMA * size if sigma is None else sigma
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2
  taps = np.exp(-0.5 * (x / sigma) ** 2)
  return taps / taps.sum()


def _conv_matrix(size: int, taps: np.ndarray, stride: int = 1,
                 pad: tuple[int, int] | None = None,
                 edge: bool = False) -> np.ndarray:
  """[out, size] matrix M: M @ x is the 1-D correlation of x [size] with taps.

  As ``lax.conv_general_dilated`` with that stride and padding (default
  'SAME'), the padding zeros, or copies of the border values with ``edge``.
  The blurs and the pyramid are applied as such matrices on H and W (two
  matmuls) rather than as 1-channel or grouped convolutions: the same sums,
  several times faster on XLA CPU (BUILD_NOTES.md, speed).
  """
  if pad is None:
    pad = ((taps.size - 1) // 2, taps.size // 2)
  out = (size + sum(pad) - taps.size) // stride + 1
  matrix = np.zeros((out, size))
  for i in range(out):
    for k, tap in enumerate(taps):
      j = stride * i + k - pad[0]
      if edge:
        j = min(max(j, 0), size - 1)
      if 0 <= j < size:
        matrix[i, j] += tap
  return matrix


def _separable(x: jax.Array, rows: np.ndarray, cols: np.ndarray) -> jax.Array:
  """Applies the [h, H] matrix ``rows`` on H and the [w, W] matrix ``cols``
  on W of x [B, H, W, C]: [B, h, w, C]."""
  return jnp.einsum('yh,bhwc,xw->byxc', jnp.asarray(rows, x.dtype), x,
                    jnp.asarray(cols, x.dtype))


def _blur(x: jax.Array, taps: np.ndarray) -> jax.Array:
  """Blurs each channel of x [B, H, W, C] by outer(taps, taps), zero-padded."""
  height, width = x.shape[1:3]
  return _separable(x, _conv_matrix(height, taps), _conv_matrix(width, taps))


def gaussian_pyramid(images: jax.Array, num_levels: int = 3) -> list[jax.Array]:
  """Gaussian pyramid: blur with a binomial kernel, then keep every 2nd pixel.

  Borders are replicated before blurring, so edges do not darken.

  Args:
    images: [B, H, W, C]; H and W divisible by 2**(num_levels - 1).

  Returns:
    ``num_levels`` arrays; level l is [B, H / 2**l, W / 2**l, C].
  """
  levels = [images]
  for _ in range(num_levels - 1):
    height, width = levels[-1].shape[1:3]
    levels.append(_separable(
        levels[-1],
        _conv_matrix(height, _PYRAMID_TAPS, 2, (1, 1), edge=True),
        _conv_matrix(width, _PYRAMID_TAPS, 2, (1, 1), edge=True)))
  return levels


def local_contrast_normalize(images: jax.Array,
                             kernel_size: int = 9) -> jax.Array:
  """Subtractive then divisive local contrast normalisation (Torch's LCN).

  As nn.SpatialContrastiveNormalization(C, image.gaussian(kernel_size)): the
  Gaussian kernel (sigma = kernel_size / 4) is normalised to sum 1 over the
  window and all C channels, so the local mean and variance pool every
  channel. Near the border the zero-padded sums are divided by the kernel's
  coverage (the part of the kernel inside the image), as Torch does for the
  mean. Unlike Torch, the coverage divides the variance before the square
  root (Torch divides the std by it), which keeps the border std unbiased.
  The divisor is max(local std, mean of the local std over the image,
  1e-4), the mean taken per example.

  Args:
    images: [B, H, W, C].
    kernel_size: width of the square Gaussian window.

  Returns:
    [B, H, W, C]: invariant to x -> a * x + b (a > 0) per example.
  """
  taps = gaussian_kernel_1d(kernel_size)
  height, width = images.shape[1:3]
  coverage = np.outer(_conv_matrix(height, taps).sum(axis=1),
                      _conv_matrix(width, taps).sum(axis=1))
  coverage = jnp.asarray(coverage[None, :, :, None], images.dtype)

  def local_average(x):  # [B, H, W, C] -> [B, H, W, 1]
    return _blur(jnp.mean(x, axis=-1, keepdims=True), taps) / coverage

  centred = images - local_average(images)
  local_std = jnp.sqrt(local_average(jnp.square(centred)))
  image_std = jnp.mean(local_std, axis=(1, 2, 3), keepdims=True)
  divisor = jnp.maximum(jnp.maximum(local_std, image_std), _LCN_EPSILON)
  return centred / divisor


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max pooling, stride 2, in ceil mode, as a reshape and a max.

  An odd height or width is padded with -inf at the bottom / right, so the
  last row or column is a 1-wide window and cell i still covers rows 2i and
  2i + 1. Equal to ``nn.max_pool(x, (2, 2), (2, 2), ((0, H % 2), (0, W % 2)))``,
  but its gradient is cheap elementwise work on XLA CPU, where
  select-and-scatter is slow (DESIGN section 7).

  Args:
    x: [B, H, W, C].

  Returns:
    [B, ceil(H / 2), ceil(W / 2), C].
  """
  height, width = x.shape[1:3]
  if height % 2 or width % 2:
    x = jnp.pad(x, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)),
                constant_values=-jnp.inf)
  return _max_pool_even(x)


def _pool_windows(x: jax.Array) -> jax.Array:
  """[B, H, W, C], H and W even -> [B, H / 2, 2, W / 2, 2, C]."""
  batch, height, width, channels = x.shape
  return x.reshape(batch, height // 2, 2, width // 2, 2, channels)


@jax.custom_vjp
def _max_pool_even(x: jax.Array) -> jax.Array:
  """``max_pool_2x2`` of a map of even height and width.

  The gradient is written out with the values of autodiff's (each maximum
  of a window gets the window's gradient divided by the number of maxima;
  ReLU outputs tie at 0), as a select where autodiff multiplies by a 0/1
  mask. The demo's coarse train step, A/B in one process: 86.0 ms with
  autodiff's, 85.5 with the multiply written out, 72.8 with the select; the
  same parameters bit for bit after a step (BUILD_NOTES, issue 16).
  """
  return jnp.max(_pool_windows(x), axis=(2, 4))


def _max_pool_even_forward(x):
  pooled = _max_pool_even(x)
  return pooled, (x, pooled)


def _max_pool_even_backward(residuals, cotangent):
  x, pooled = residuals
  is_max = _pool_windows(x) == pooled[:, :, None, :, None, :]
  share = cotangent / jnp.sum(is_max, axis=(2, 4)).astype(cotangent.dtype)
  grad = jnp.where(is_max, share[:, :, None, :, None, :], 0.0)
  return (grad.reshape(x.shape),)


_max_pool_even.defvjp(_max_pool_even_forward, _max_pool_even_backward)


def upsample_nearest(x: jax.Array, factor: int) -> jax.Array:
  """Nearest-neighbour upsampling [B, H, W, C] -> [B, kH, kW, C], k = factor.

  Each cell is repeated factor x factor times, so an upsampled cell covers the
  same input pixels as the coarse cell it came from (DESIGN section 5).
  """
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class SpatialDropout(nn.Module):
  """Dropout of whole feature maps (paper Sec. 3.2).

  One Bernoulli trial per example and channel, shared by every spatial
  position; kept maps are scaled by 1 / (1 - rate) at train time, so the
  expectation is unchanged and evaluation is the identity.

  Attributes:
    rate: probability of dropping a feature map (not the keep rate).
    rng_collection: the rng collection the mask is drawn from.
  """
  rate: float
  rng_collection: str = 'dropout'

  @nn.compact
  def __call__(self, inputs: jax.Array, deterministic: bool) -> jax.Array:
    """Drops whole channels of the inputs.

    Args:
      inputs: [B, H, W, C] feature maps.
      deterministic: if true, return the inputs unchanged (evaluation).

    Returns:
      [B, H, W, C]: each channel of each example either all zero or scaled by
      1 / (1 - rate).
    """
    if deterministic or self.rate == 0.0:
      return inputs
    if self.rate == 1.0:
      return jnp.zeros_like(inputs)
    keep_prob = 1.0 - self.rate
    batch, _, _, channels = inputs.shape
    keep = jax.random.bernoulli(self.make_rng(self.rng_collection), keep_prob,
                                (batch, 1, 1, channels))
    return jnp.where(keep, inputs / keep_prob, 0.0)
