"""Tests for cascade_jax.model.crop."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cascade_jax.model import crop

# Interior, border (corners, edges) and outside-the-image centres for a
# 24 x 32 (H x W) image; the last two windows overlap.
CENTRES = np.array([
    [[15.5, 11.5], [0.0, 0.0], [31.0, 23.0], [3.0, 20.0]],
    [[-7.0, 40.0], [50.0, -3.0], [16.0, 12.0], [18.0, 13.0]],
], np.float32)
IMAGE_SIZE = (24, 32)


def _numpy_origins(centres, image_size, context, grid):
  height, width = image_size
  clipped = np.clip(centres, 0, [width - 1, height - 1])
  return (grid * np.floor((clipped - (context - 1) / 2) / grid + 0.5)).astype(
      np.int64)


def _numpy_crop(feature_map, origins, context, stride):
  """Slices a generously zero-padded copy: no clamping can happen."""
  margin = 100
  padded = np.pad(feature_map, ((0, 0), (margin, margin), (margin, margin),
                                (0, 0)))
  size = context // stride
  out = np.zeros((*origins.shape[:2], size, size, feature_map.shape[-1]),
                 feature_map.dtype)
  for b in range(origins.shape[0]):
    for j in range(origins.shape[1]):
      x0, y0 = origins[b, j] // stride + margin
      out[b, j] = padded[b, y0:y0 + size, x0:x0 + size]
  return out


def _feature_map(stride, channels=3, seed=0):
  height, width = (-(-n // stride) for n in IMAGE_SIZE)
  return np.random.default_rng(seed).normal(
      size=(2, height, width, channels)).astype(np.float32)


class WindowOriginsTest(chex.TestCase):

  def test_hand_computed_origins(self):
    # context 40, grid 8: o = 8 * floor((c - 19.5) / 8 + 1/2).
    centres = np.array([[[35.5, 3.5], [0.0, 23.0], [-50.0, 100.0]]])
    origins = crop.window_origins(jnp.asarray(centres), (24, 64), 40, 8)
    # 35.5 -> 16 (centre 35.5: an 8x cell centre is exactly the window
    # centre); 3.5 -> -16 (floor(-1.5)); 0 -> -16; 23 -> 0 (floor(0.9375));
    # -50 clipped to 0 -> -16; 100 clipped to 23 -> 0.
    np.testing.assert_array_equal(origins, [[[16, -16], [-16, 0], [-16, 0]]])
    self.assertEqual(origins.dtype, jnp.int32)

  def test_window_centre_within_half_a_grid_cell_of_the_centre(self):
    rng = np.random.default_rng(0)
    centres = rng.uniform([0, 0], [31, 23], size=(4, 5, 2))
    origins = np.asarray(crop.window_origins(jnp.asarray(centres), IMAGE_SIZE,
                                             40, 8))
    np.testing.assert_array_equal(origins % 8, 0)
    self.assertLessEqual(np.max(np.abs(origins + 19.5 - centres)), 4.0)

  def test_context_not_a_multiple_of_the_grid_raises(self):
    with pytest.raises(ValueError, match=r'context = 36.*multiple of 8.*40'):
      crop.window_origins(jnp.zeros((1, 1, 2)), IMAGE_SIZE, 36, 8)


class CropWindowsTest(chex.TestCase):

  def test_crops_equal_numpy_slicing_interior_border_and_outside(self):
    context, grid = 16, 8
    origins = crop.window_origins(jnp.asarray(CENTRES), IMAGE_SIZE, context,
                                  grid)
    np.testing.assert_array_equal(
        origins, _numpy_origins(CENTRES, IMAGE_SIZE, context, grid))
    for stride in (1, 2, 4, 8):
      with self.subTest(stride=stride):
        feature_map = _feature_map(stride)
        crops = jax.jit(crop.crop_windows, static_argnums=(2, 3, 4))(
            jnp.asarray(feature_map), origins, context, stride, grid)
        chex.assert_shape(crops, (2, 4, context // stride, context // stride,
                                  3))
        np.testing.assert_array_equal(
            crops, _numpy_crop(feature_map, np.asarray(origins), context,
                               stride))

  def test_windows_of_every_stride_cover_the_same_input_pixels(self):
    # Feature pixel (i, k) at stride t holds 1 + t * k, one more than the
    # first input column it covers: upsampled by t, window column u must hold
    # 1 + (o + u) rounded down to t, and 0 (padding) outside the image.
    context, grid = 16, 8
    origins = np.asarray(crop.window_origins(jnp.asarray(CENTRES), IMAGE_SIZE,
                                             context, grid))
    pixels = origins[..., None] + np.arange(context)  # [B, J, 2, context]
    inside = (pixels >= 0) & (pixels < np.array(IMAGE_SIZE[::-1])[:, None])
    inside = inside[..., 1, :, None] & inside[..., 0, None, :]  # [B, J, y, x]
    for stride in (1, 2, 4, 8):
      with self.subTest(stride=stride):
        height, width = (-(-n // stride) for n in IMAGE_SIZE)
        columns = np.broadcast_to(
            1.0 + stride * np.arange(width, dtype=np.float32),
            (2, height, width))[..., None]
        crops = crop.crop_windows(jnp.asarray(columns), jnp.asarray(origins),
                                  context, stride, grid)[..., 0]
        upsampled = np.repeat(np.repeat(np.asarray(crops), stride, axis=-1),
                              stride, axis=-2)
        expected = 1 + pixels[..., 0, None, :] // stride * stride
        np.testing.assert_array_equal(upsampled,
                                      np.where(inside, expected, 0))

  def test_gradient_is_a_scatter_add_of_the_output_gradients(self):
    context, grid, stride = 16, 8, 2
    origins = crop.window_origins(jnp.asarray(CENTRES), IMAGE_SIZE, context,
                                  grid)
    feature_map = _feature_map(stride)
    size = context // stride
    output_grads = np.random.default_rng(1).normal(
        size=(2, 4, size, size, 3)).astype(np.float32)

    def loss(fmap):
      return jnp.sum(crop.crop_windows(fmap, origins, context, stride, grid)
                     * output_grads)

    grads = jax.grad(loss)(jnp.asarray(feature_map))
    margin = 100
    expected = np.zeros(np.add(feature_map.shape, (0, 2 * margin,
                                                   2 * margin, 0)))
    for b in range(2):
      for j in range(4):
        x0, y0 = np.asarray(origins[b, j]) // stride + margin
        expected[b, y0:y0 + size, x0:x0 + size] += output_grads[b, j]
    expected = expected[:, margin:-margin, margin:-margin]
    # The last two windows of example 1 overlap (here they coincide).
    self.assertTrue(np.all(np.abs(origins[1, 2] - origins[1, 3]) < context))
    np.testing.assert_allclose(grads, expected, rtol=1e-6, atol=1e-6)

    jaxpr = str(jax.make_jaxpr(jax.grad(loss))(jnp.asarray(feature_map)))
    self.assertTrue('scatter-add' in jaxpr or 'scatter_add' in jaxpr, jaxpr)


class CropFeaturesTest(chex.TestCase):

  def test_groups_crops_by_resolution(self):
    c1, c2, context = 2, 3, 16
    features = [(jnp.asarray(_feature_map(2**level, c1, seed=2 * level)),
                 jnp.asarray(_feature_map(2**(level + 1), c2,
                                          seed=2 * level + 1)))
                for level in range(3)]
    crops, origins = crop.crop_features(features, jnp.asarray(CENTRES),
                                        context)
    chex.assert_shape(crops, [(2, 4, 16, 16, c1), (2, 4, 8, 8, c2 + c1),
                              (2, 4, 4, 4, c2 + c1), (2, 4, 2, 2, c2)])
    np.testing.assert_array_equal(
        origins, _numpy_origins(CENTRES, IMAGE_SIZE, context, 8))
    for r, parts in enumerate([[features[0][0]],
                               [features[0][1], features[1][0]],
                               [features[1][1], features[2][0]],
                               [features[2][1]]]):
      expected = np.concatenate(
          [_numpy_crop(np.asarray(p), np.asarray(origins), context, 2**r)
           for p in parts], axis=-1)
      np.testing.assert_array_equal(crops[r], expected)
