"""Tests for cascade_jax.model.layers."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from cascade_jax.model import layers


def _local_average(x, kernel_size=9):
  """Gaussian-weighted mean over window and channels, [H, W, C] -> [H, W].

  An independent (scipy) implementation; only the interior is exact.
  """
  taps = layers.gaussian_kernel_1d(kernel_size)
  return ndimage.correlate(x.mean(axis=-1), np.outer(taps, taps),
                           mode='constant')


class GaussianKernelTest(chex.TestCase):

  def test_torch_width_and_normalisation(self):
    taps = layers.gaussian_kernel_1d(9)
    chex.assert_shape(taps, (9,))
    np.testing.assert_allclose(taps.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(taps, taps[::-1])
    # Torch's image.gaussian(9): sigma = 0.25 * 9 = 2.25 pixels.
    np.testing.assert_allclose(taps[4] / taps[5], np.exp(0.5 / 2.25**2))


class ConvMatrixTest(chex.TestCase):
  """The blurs and the pyramid are matrices on H and W: the same sums as the
  convolutions they replace (the previous implementation), to rounding."""

  def _conv(self, x, taps, stride, padding):
    """lax's correlation of each channel of x [B, H, W, C] by outer(taps)."""
    kernel = np.tile(np.outer(taps, taps)[:, :, None, None],
                     (1, 1, 1, x.shape[-1]))
    return jax.lax.conv_general_dilated(
        x, jnp.asarray(kernel, jnp.float32), (stride, stride), padding,
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
        feature_group_count=x.shape[-1])

  def test_matrix_equals_same_convolution(self):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 12, 17, 2)),
                    jnp.float32)
    for taps in (layers.gaussian_kernel_1d(9), layers.gaussian_kernel_1d(4)):
      chex.assert_trees_all_close(layers._blur(x, taps),
                                  self._conv(x, taps, 1, 'SAME'), atol=1e-5)

  def test_pyramid_equals_strided_convolution_of_the_edge_padded_image(self):
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(2, 16, 24, 3)),
                    jnp.float32)
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='edge')
    chex.assert_trees_all_close(
        layers.gaussian_pyramid(x, num_levels=2)[1],
        self._conv(padded, np.array([1.0, 3.0, 3.0, 1.0]) / 8.0, 2, 'VALID'),
        atol=1e-6)


class GaussianPyramidTest(chex.TestCase):

  def test_shapes(self):
    levels = layers.gaussian_pyramid(jnp.zeros((2, 64, 96, 3)), num_levels=3)
    chex.assert_shape(levels, [(2, 64, 96, 3), (2, 32, 48, 3), (2, 16, 24, 3)])

  def test_constant_image_stays_constant_at_the_borders(self):
    levels = layers.gaussian_pyramid(jnp.full((1, 16, 16, 3), 0.7))
    for level in levels:
      chex.assert_trees_all_close(level, jnp.full_like(level, 0.7), atol=1e-6)

  def test_level_pixel_i_is_centred_on_input_pixel_2i_plus_half(self):
    ramp = jnp.broadcast_to(jnp.arange(32.0)[None, None, :, None],
                            (1, 8, 32, 1))
    level1 = layers.gaussian_pyramid(ramp, num_levels=2)[1]
    # Interior columns (the replicated border bends the ramp at both ends).
    chex.assert_trees_all_close(level1[0, 0, 1:-1, 0],
                                2.0 * jnp.arange(1.0, 15.0) + 0.5, atol=1e-5)


class LocalContrastNormalizeTest(chex.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    # Noise plus a strong smooth gradient, which only a local mean removes.
    ramp = np.linspace(0.0, 3.0, 48)[None, :, None]
    self.image = (rng.normal(size=(48, 48, 3)) + ramp).astype(np.float32)

  def test_brightness_and_contrast_invariance(self):
    out = layers.local_contrast_normalize(self.image[None])
    changed = layers.local_contrast_normalize(3.0 * self.image[None] + 0.5)
    chex.assert_trees_all_close(changed, out, atol=1e-4)
    # Not trivially constant.
    self.assertGreater(float(jnp.std(out)), 0.5)

  def test_local_mean_is_zero_in_the_interior(self):
    out = np.asarray(layers.local_contrast_normalize(self.image[None]))[0]
    local_mean = _local_average(out)[8:-8, 8:-8]
    # The input's local mean is ~0 to ~3 (ramp); the output's is near 0 on
    # the scale of its unit local std.
    self.assertLess(np.abs(local_mean).max(), 0.25)
    self.assertLess(np.abs(local_mean).mean(), 0.08)

  def test_local_std_is_one_where_the_signal_is_strong(self):
    rng = np.random.default_rng(1)
    image = rng.normal(size=(48, 64, 3)).astype(np.float32)
    image[:, 32:] *= 0.1  # right half: weak signal, below the image's mean std.
    out = np.asarray(layers.local_contrast_normalize(image[None]))[0]
    local_std = np.sqrt(_local_average(out**2))
    strong = local_std[8:-8, 8:20]
    weak = local_std[8:-8, 44:-8]
    np.testing.assert_allclose(strong, 1.0, atol=0.15)
    np.testing.assert_allclose(strong.mean(), 1.0, atol=0.05)
    # Weak regions are divided by the image's mean std, not blown up to 1.
    self.assertLess(weak.max(), 0.4)

  def test_constant_image_is_zero_everywhere_including_the_border(self):
    out = layers.local_contrast_normalize(jnp.full((1, 20, 24, 3), 0.5))
    # Rounding error over the 1e-4 floor of the divisor; without the coverage
    # correction the border would be of order 1.
    chex.assert_trees_all_close(out, jnp.zeros_like(out), atol=1e-2)


class MaxPoolTest(chex.TestCase):

  def test_equals_nn_max_pool_values_and_gradient(self):
    x = jax.random.normal(jax.random.key(0), (2, 8, 12, 5))
    cotangent = jax.random.normal(jax.random.key(1), (2, 4, 6, 5))

    def reference(x):
      return nn.max_pool(x, (2, 2), strides=(2, 2))

    chex.assert_trees_all_close(layers.max_pool_2x2(x), reference(x))
    grad = jax.grad(lambda x: jnp.sum(layers.max_pool_2x2(x) * cotangent))(x)
    grad_ref = jax.grad(lambda x: jnp.sum(reference(x) * cotangent))(x)
    chex.assert_trees_all_close(grad, grad_ref)

  def test_gradient_equals_autodiffs_bit_for_bit_with_ties(self):
    # Small integers tie often, as ReLU outputs do at 0: autodiff of the max
    # shares a window's gradient among its maxima, and so must the
    # hand-written gradient.
    x = jax.random.randint(jax.random.key(2), (2, 6, 8, 3), 0, 3).astype(
        jnp.float32)
    cotangent = jax.random.normal(jax.random.key(3), (2, 3, 4, 3))

    def autodiff_pool(x):
      return jnp.max(x.reshape(2, 3, 2, 4, 2, 3), axis=(2, 4))

    grad = jax.grad(lambda x: jnp.sum(layers.max_pool_2x2(x) * cotangent))(x)
    grad_ref = jax.grad(lambda x: jnp.sum(autodiff_pool(x) * cotangent))(x)
    ties = (x.reshape(2, 3, 2, 4, 2, 3) == autodiff_pool(x)[:, :, None, :,
                                                            None]).sum((2, 4))
    self.assertGreater(int(jnp.sum(ties > 1)), 10)  # the case is exercised
    chex.assert_trees_all_equal(layers.max_pool_2x2(x), autodiff_pool(x))
    chex.assert_trees_all_equal(grad, grad_ref)
    # A window's maxima share its gradient: the sum per window is unchanged.
    chex.assert_trees_all_close(grad.reshape(2, 3, 2, 4, 2, 3).sum((2, 4)),
                                cotangent, rtol=1e-6)

  def test_odd_size_gradient_skips_the_padding(self):
    x = jax.random.normal(jax.random.key(4), (1, 5, 3, 2))
    cotangent = jax.random.normal(jax.random.key(5), (1, 3, 2, 2))
    grad = jax.grad(lambda x: jnp.sum(layers.max_pool_2x2(x) * cotangent))(x)
    grad_ref = jax.grad(lambda x: jnp.sum(nn.max_pool(
        x, (2, 2), strides=(2, 2), padding=((0, 1), (0, 1))) * cotangent))(x)
    chex.assert_trees_all_close(grad, grad_ref)

  def test_odd_size_pools_in_ceil_mode(self):
    x = jax.random.normal(jax.random.key(0), (1, 5, 4, 2))
    pooled = layers.max_pool_2x2(x)
    chex.assert_shape(pooled, (1, 3, 2, 2))
    chex.assert_trees_all_close(
        pooled,
        nn.max_pool(x, (2, 2), strides=(2, 2), padding=((0, 1), (0, 0))))
    # The last row is a window of one row.
    chex.assert_trees_all_close(pooled[:, 2], jnp.maximum(x[:, 4, 0::2],
                                                          x[:, 4, 1::2]))


class UpsampleNearestTest(chex.TestCase):

  def test_hand_case(self):
    x = jnp.array([[1.0, 2.0], [3.0, 4.0]])[None, :, :, None]
    expected = jnp.array([[1, 1, 2, 2], [1, 1, 2, 2],
                          [3, 3, 4, 4], [3, 3, 4, 4]], jnp.float32)
    chex.assert_trees_all_close(layers.upsample_nearest(x, 2)[0, :, :, 0],
                                expected)


class SpatialDropoutTest(chex.TestCase):

  rate = 0.3

  def _apply(self, x, seed, deterministic=False):
    return layers.SpatialDropout(self.rate).apply(
        {}, x, deterministic=deterministic,
        rngs={'dropout': jax.random.key(seed)})

  def test_drops_whole_channels(self):
    x = jax.random.uniform(jax.random.key(0), (8, 6, 7, 32), minval=0.5)
    out = np.asarray(self._apply(x, seed=1))
    scaled = np.asarray(x) / (1 - self.rate)
    dropped = np.all(out == 0.0, axis=(1, 2))  # [B, C]
    kept = np.all(np.isclose(out, scaled, rtol=1e-6), axis=(1, 2))
    np.testing.assert_array_equal(dropped | kept, True)
    self.assertTrue(dropped.any() and kept.any())

  def test_dropped_fraction_is_the_rate(self):
    x = jnp.ones((64, 2, 2, 64))
    fractions = [float(jnp.mean(self._apply(x, seed) == 0.0))
                 for seed in range(5)]
    # 5 * 4096 Bernoulli trials: the standard error is ~0.003.
    np.testing.assert_allclose(np.mean(fractions), self.rate, atol=0.015)

  def test_keeps_the_expectation(self):
    x = jax.random.uniform(jax.random.key(0), (2, 3, 3, 4), minval=0.5)
    keys = jax.random.split(jax.random.key(1), 4000)
    outs = jax.vmap(lambda key: layers.SpatialDropout(self.rate).apply(
        {}, x, deterministic=False, rngs={'dropout': key}))(keys)
    # Per-element standard error ~ sqrt(rate / (1 - rate) / 4000) = 1%.
    chex.assert_trees_all_close(jnp.mean(outs, axis=0), x, rtol=0.05)

  def test_identity_at_eval(self):
    x = jax.random.normal(jax.random.key(0), (2, 5, 5, 8))
    out = layers.SpatialDropout(self.rate).apply({}, x, deterministic=True)
    chex.assert_trees_all_equal(out, x)
