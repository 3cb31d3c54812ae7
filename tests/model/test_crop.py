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


def _numpy_origins(centres, image_size, context):
  height, width = image_size
  clipped = np.clip(centres, 0, [width - 1, height - 1])
  return np.floor(clipped - (context - 1) / 2 + 0.5).astype(np.int64)


def _numpy_crop(feature_map, origins, context, stride):
  """Slices a generously zero-padded copy: no clamping can happen."""
  margin = 100
  padded = np.pad(feature_map, ((0, 0), (margin, margin), (margin, margin),
                                (0, 0)))
  size = -(-(context + stride - 1) // stride)
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
    # context 40: o = floor(c - 19.5 + 0.5) = floor(c - 19).
    centres = np.array([[[35.5, 3.5], [0.0, 23.0], [-50.0, 100.0]]])
    origins = crop.window_origins(jnp.asarray(centres), (24, 64), 40)
    # 35.5 -> 16, 3.5 -> -16 (window centres 35.5 and 3.5: exact); 0 -> -19;
    # 23 -> 4; -50 clipped to 0 -> -19; 100 clipped to 23 -> 4.
    np.testing.assert_array_equal(origins, [[[16, -16], [-19, 4], [-19, 4]]])
    self.assertEqual(origins.dtype, jnp.int32)

  def test_windows_are_centred_on_every_cell_at_4x_8x_16x(self):
    # A coarse argmax is the cell centre s * j + (s - 1) / 2: the window
    # centre o + (context - 1) / 2 must equal it, for every cell, every
    # pooling and every even context (before issue 13, 16x windows with
    # context 24 sat 4 px right and below, and 4x ones alternated +-2 px).
    height, width = 64, 96
    for pooling in (4, 8, 16):
      cells_x = pooling * np.arange(width // pooling) + (pooling - 1) / 2
      cells_y = pooling * np.arange(height // pooling) + (pooling - 1) / 2
      centres = np.stack(np.meshgrid(cells_x, cells_y), -1).reshape(1, -1, 2)
      for context in (16, 24, 36, 40):
        with self.subTest(pooling=pooling, context=context):
          origins = np.asarray(crop.window_origins(
              jnp.asarray(centres, jnp.float32), (height, width), context))
          np.testing.assert_array_equal(origins + (context - 1) / 2, centres)

  def test_window_centre_within_half_a_pixel_of_any_centre(self):
    rng = np.random.default_rng(0)
    centres = rng.uniform([0, 0], [31, 23], size=(4, 5, 2))
    origins = np.asarray(crop.window_origins(jnp.asarray(centres), IMAGE_SIZE,
                                             40))
    self.assertLessEqual(np.max(np.abs(origins + 19.5 - centres)), 0.5)

  def test_odd_context_raises_naming_the_valid_ones(self):
    with pytest.raises(ValueError, match=r'context = 35.*even.*e\.g\. 36'):
      crop.window_origins(jnp.zeros((1, 1, 2)), IMAGE_SIZE, 35)


class CropWindowsTest(chex.TestCase):

  def test_crops_equal_numpy_slicing_interior_border_and_outside(self):
    context = 16
    origins = crop.window_origins(jnp.asarray(CENTRES), IMAGE_SIZE, context)
    np.testing.assert_array_equal(
        origins, _numpy_origins(CENTRES, IMAGE_SIZE, context))
    for stride, cells in ((1, 16), (2, 9), (4, 5), (8, 3)):
      with self.subTest(stride=stride):
        self.assertEqual(crop.window_cells(context, stride), cells)
        feature_map = _feature_map(stride)
        crops = jax.jit(crop.crop_windows, static_argnums=(2, 3))(
            jnp.asarray(feature_map), origins, context, stride)
        chex.assert_shape(crops, (2, 4, cells, cells, 3))
        np.testing.assert_array_equal(
            crops, _numpy_crop(feature_map, np.asarray(origins), context,
                               stride))

  def test_joint_windows_take_each_joints_own_channel(self):
    context, stride = 16, 8
    origins = crop.window_origins(jnp.asarray(CENTRES), IMAGE_SIZE, context)
    heatmaps = _feature_map(stride, channels=CENTRES.shape[1], seed=3)
    windows = crop.joint_windows(jnp.asarray(heatmaps), origins, context,
                                 stride)
    chex.assert_shape(windows, (2, CENTRES.shape[1], 3, 3, 1))
    every_channel = _numpy_crop(heatmaps, np.asarray(origins), context,
                                stride)  # [B, J, n, n, J]
    for joint in range(CENTRES.shape[1]):
      np.testing.assert_array_equal(windows[:, joint, ..., 0],
                                    every_channel[:, joint, ..., joint])

  def test_windows_of_every_stride_cover_the_same_input_pixels(self):
    # Feature pixel k at stride t holds its cell centre t * k + (t - 1) / 2
    # (input pixels): upsampled bilinearly and aligned, window column u must
    # hold the input pixel o + u where it lies between two cropped cell
    # centres, and the nearer edge cell's value beyond them (np.interp).
    context = 16
    origins = np.asarray(crop.window_origins(jnp.asarray(CENTRES), IMAGE_SIZE,
                                             context))
    self.assertTrue(np.any(origins % 8))  # Origins off every stride's grid.
    for stride in (2, 4, 8):
      with self.subTest(stride=stride):
        height, width = (-(-n // stride) for n in IMAGE_SIZE)
        centres = stride * np.arange(width) + (stride - 1) / 2
        columns = np.broadcast_to(centres.astype(np.float32),
                                  (2, height, width))[..., None]
        crops = crop.crop_windows(jnp.asarray(columns), jnp.asarray(origins),
                                  context, stride)
        aligned = jax.vmap(crop.upsample_window, in_axes=(1, 1, None, None),
                           out_axes=1)(crops, jnp.asarray(origins), context,
                                       stride)
        size = crop.window_cells(context, stride)
        ramps = 0
        for b, j in np.ndindex(origins.shape[:2]):
          x0, y0 = origins[b, j]
          # The crop's cell centres (first cell: Python's floor division).
          cx, cy = (stride * (o // stride + np.arange(size)) + (stride - 1) / 2
                    for o in (x0, y0))
          # [size, size]; rows and columns outside the map are 0.
          cells = np.asarray(crops[b, j, :, :, 0])
          along_x = np.stack([np.interp(x0 + np.arange(context), cx, row)
                              for row in cells])
          expected = np.stack([np.interp(y0 + np.arange(context), cy, column)
                               for column in along_x.T], axis=1)
          np.testing.assert_allclose(aligned[b, j, :, :, 0], expected,
                                     atol=1e-4)
          if (cells[0] != 0).all():  # Every column inside the image: the
            ramps += 1  # ramp over cell centres gives each pixel its own x.
            np.testing.assert_allclose(
                aligned[b, j, 0, stride:-stride, 0],
                x0 + np.arange(context)[stride:-stride], atol=1e-4)
        self.assertGreater(ramps, 0)

  def test_upsample_window_equals_a_resize_then_a_slice(self):
    # The reference: jax.image.resize ('linear'), then the window sliced at
    # the remainder; values and gradients.
    rng = np.random.default_rng(0)
    context = 24
    for stride in (2, 4, 8):
      with self.subTest(stride=stride):
        size = crop.window_cells(context, stride)
        crops = jnp.asarray(rng.normal(size=(5, size, size, 3)), jnp.float32)
        origins = jnp.asarray(rng.integers(-20, 60, size=(5, 2)))
        weights = jnp.asarray(rng.normal(size=(5, context, context, 3)),
                              jnp.float32)

        def reference(x):
          upsampled = jax.image.resize(
              x, (5, size * stride, size * stride, 3), 'linear')
          return jax.vmap(lambda image, offset: jax.lax.dynamic_slice(
              image, (offset[1], offset[0], 0), (context, context, 3)))(
                  upsampled, origins % stride)

        ours = lambda x: crop.upsample_window(x, origins, context, stride)
        chex.assert_trees_all_close(ours(crops), reference(crops), atol=1e-5)
        loss = lambda f: lambda x: jnp.sum(weights * f(x))
        chex.assert_trees_all_close(jax.grad(loss(ours))(crops),
                                    jax.grad(loss(reference))(crops),
                                    atol=1e-5)

  def test_gradient_is_a_scatter_add_of_the_output_gradients(self):
    context, stride = 16, 2
    origins = crop.window_origins(jnp.asarray(CENTRES), IMAGE_SIZE, context)
    feature_map = _feature_map(stride)
    size = crop.window_cells(context, stride)
    output_grads = np.random.default_rng(1).normal(
        size=(2, 4, size, size, 3)).astype(np.float32)

    def loss(fmap):
      return jnp.sum(crop.crop_windows(fmap, origins, context, stride)
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
    chex.assert_shape(crops, [(2, 4, 16, 16, c1), (2, 4, 9, 9, c2 + c1),
                              (2, 4, 5, 5, c2 + c1), (2, 4, 3, 3, c2)])
    np.testing.assert_array_equal(
        origins, _numpy_origins(CENTRES, IMAGE_SIZE, context))
    for r, parts in enumerate([[features[0][0]],
                               [features[0][1], features[1][0]],
                               [features[1][1], features[2][0]],
                               [features[2][1]]]):
      expected = np.concatenate(
          [_numpy_crop(np.asarray(p), np.asarray(origins), context, 2**r)
           for p in parts], axis=-1)
      np.testing.assert_array_equal(crops[r], expected)
