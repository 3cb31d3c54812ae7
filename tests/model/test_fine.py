"""Tests for cascade_jax.model.fine."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cascade_jax import heatmaps
from cascade_jax.model import crop
from cascade_jax.model import fine
from cascade_jax.model import losses

# Crops of coarse features with c1 = 2, c2 = 3, context 16: channels per
# resolution (c1, c2 + c1, c2 + c1, c2).
CHANNELS = (2, 5, 5, 3)
NARROW = dict(bank_widths=(4, 5), hidden_width=6)


def _crops(num_joints, batch=2, context=16):
  rng = np.random.default_rng(0)
  return [jnp.asarray(rng.normal(size=(batch, num_joints,
                                       crop.window_cells(context, 2**r),
                                       crop.window_cells(context, 2**r),
                                       channels)),
                      jnp.float32)
          for r, channels in enumerate(CHANNELS)]


def _origins(num_joints, batch=2):
  """Window origins on no stride's grid (odd and even, negative too)."""
  return jnp.asarray(np.random.default_rng(1).integers(
      -9, 30, size=(batch, num_joints, 2)), jnp.int32)


@functools.cache
def _variables():
  """Variables of a 4-joint model on _crops(4), initialised once (slow)."""
  model = fine.FineHeatmapModel(num_joints=4, **NARROW)
  return jax.jit(model.init)(jax.random.key(1), _crops(4), _origins(4))


def _num_params(tree):
  return sum(leaf.size for leaf in jax.tree.leaves(tree))


class FineHeatmapModelTest(chex.TestCase):

  def test_output_shape(self):
    model = fine.FineHeatmapModel(num_joints=4, **NARROW)
    chex.assert_shape(jax.jit(model.apply)(_variables(), _crops(4), _origins(4)),
                      (2, 16, 16, 4))

  def test_parameter_counts(self):
    # Per bank r, kernel + bias: conv7x7 C_r -> 4, conv7x7 4 -> 5; then
    # 1x1 5 -> 6. Unshared: a [J, 6] kernel and [J] bias.
    shared = sum(49 * c * 4 + 4 + 49 * 4 * 5 + 5 for c in CHANNELS) + 5 * 6 + 6
    self.assertEqual(shared, 6932)
    for num_joints in (1, 3, 7):
      with self.subTest(num_joints=num_joints):
        model = fine.FineHeatmapModel(num_joints=num_joints, **NARROW)
        params = jax.eval_shape(model.init, jax.random.key(1),
                                _crops(num_joints, batch=1),
                                _origins(num_joints, batch=1))['params']
        self.assertEqual(_num_params(params['siamese']), shared)
        self.assertEqual(_num_params(params['joint_kernel']) +
                         _num_params(params['joint_bias']), 7 * num_joints)
        self.assertEqual(_num_params(params), shared + 7 * num_joints)

  def test_permuting_joints_permutes_the_shared_outputs(self):
    siamese = fine.SiameseBranches(**NARROW)
    crops, origins = _crops(4), _origins(4)
    params = {'params': _variables()['params']['siamese']}
    apply = jax.jit(siamese.apply)
    permutation = np.array([2, 0, 3, 1])
    outputs = apply(params, crops, origins)
    permuted = apply(params, [c[:, permutation] for c in crops],
                     origins[:, permutation])
    chex.assert_shape(outputs, (2, 4, 16, 16, 6))
    chex.assert_trees_all_close(permuted, outputs[:, permutation], atol=1e-6)
    # Each joint gets the same network: joint j alone gives the same output.
    alone = apply(params, [c[:, 1:2] for c in crops], origins[:, 1:2])
    chex.assert_trees_all_close(alone[:, 0], outputs[:, 1], atol=1e-6)

  def test_unshared_layer_uses_each_joints_own_weights(self):
    model = fine.FineHeatmapModel(num_joints=4, **NARROW)
    crops, origins = _crops(4), _origins(4)
    params = _variables()['params']
    features = jax.jit(fine.SiameseBranches(**NARROW).apply)(
        {'params': params['siamese']}, crops, origins)  # [B, J, y, x, C]
    expected = (np.einsum('bjyxc,jc->byxj', features, params['joint_kernel'])
                + params['joint_bias'])
    chex.assert_trees_all_close(
        jax.jit(model.apply)({'params': params}, crops, origins), expected,
        atol=1e-5)

  def test_coarse_banks_leave_no_plateaus_in_the_heatmap(self):
    # With only the stride-2 crops non-zero, nearest upsampling would make
    # every 2 x 2 block of the heat-map equal, and the argmax would always
    # take the block's top-left pixel: a -0.5 px bias (BUILD_NOTES, issue 3).
    crops = [c if r == 1 else jnp.zeros_like(c)
             for r, c in enumerate(_crops(4))]
    maps = np.asarray(jax.jit(fine.FineHeatmapModel(num_joints=4, **NARROW)
                              .apply)(_variables(), crops, _origins(4)))
    self.assertFalse(np.allclose(maps[:, 0::2], maps[:, 1::2]))
    self.assertFalse(np.allclose(maps[:, :, 0::2], maps[:, :, 1::2]))

  def test_wrong_number_of_joints_raises(self):
    model = fine.FineHeatmapModel(num_joints=2, **NARROW)
    with pytest.raises(ValueError, match='num_joints = 2.*3 joints'):
      jax.eval_shape(model.init, jax.random.key(1), _crops(3), _origins(3))

  def test_a_hint_without_its_stride_raises(self):
    model = fine.FineHeatmapModel(num_joints=4, **NARROW)  # hint_stride 0.
    cells = crop.window_cells(16, 8)
    hint = jnp.zeros((2, 4, cells, cells, 1))
    with pytest.raises(ValueError, match='hint_stride 0'):
      jax.eval_shape(model.init, jax.random.key(1), _crops(4), _origins(4),
                     hint)


class FineTargetsTest(chex.TestCase):

  JOINTS = np.array([[[20.0, 30.5], [3.0, 4.0], [40.0, 30.0]],
                     [[-1.0, -1.0], [7.7, 8.2], [15.0, 15.0]]], np.float32)
  VISIBLE = np.array([[1, 1, 1], [1, 0, 1]], np.float32)
  ORIGINS = np.array([[[8, 24], [-8, -8], [16, 24]],
                      [[0, 0], [0, 0], [0, 0]]], np.int32)

  def _targets(self, mask_outside):
    return fine.fine_targets(jnp.asarray(self.JOINTS),
                             jnp.asarray(self.VISIBLE),
                             jnp.asarray(self.ORIGINS), 16,
                             mask_outside=mask_outside)

  def test_paper_targets_are_the_full_image_target_cropped(self):
    # Paper eq. 2: every labelled joint has weight 1, inside its window or
    # not; only example 1's joint 1 (unlabelled) is masked.
    targets, weights = self._targets(mask_outside=False)
    np.testing.assert_array_equal(weights, [[1, 1, 1], [1, 0, 1]])
    local = self.JOINTS - self.ORIGINS  # [B, J, 2] window pixels.
    pixels = np.arange(16.0)
    expected = np.exp(
        -((pixels[None, None, :, None] - local[:, None, None, :, 0])**2
          + (pixels[None, :, None, None] - local[:, None, None, :, 1])**2)
        / (2 * fine.FINE_SIGMA**2)) * self.VISIBLE[:, None, None, :]
    np.testing.assert_allclose(targets, expected, atol=1e-6)
    # Example 1's joint 0 at window pixel (-1, -1): its tail is inside.
    self.assertGreater(float(targets[1, 0, 0, 0]), 0.3)
    self.assertEqual(float(targets[0, 12, 11, 1]), 1.0)  # Peak at (11, 12).
    # (24, 6) in window pixels is 8.5 px right of the window: all ~0.
    self.assertLess(float(jnp.max(targets[0, ..., 2])), 1e-6)

  def test_masked_targets_drop_windows_without_their_joint(self):
    targets, weights = self._targets(mask_outside=True)
    # In window: (12, 6.5), (11, 12); outside: (24, 6) and (-1, -1);
    # unlabelled: example 1 joint 1; (15, 15) on the last pixel: inside.
    np.testing.assert_array_equal(weights, [[1, 1, 0], [0, 0, 1]])
    for b in range(2):
      expected, expected_weights = heatmaps.encode(
          self.JOINTS[b] - self.ORIGINS[b], self.VISIBLE[b], (16, 16),
          stride=1, sigma=fine.FINE_SIGMA)
      np.testing.assert_array_equal(weights[b], expected_weights)
      np.testing.assert_allclose(targets[b], expected, atol=1e-6)

  def test_e2_on_a_window_without_its_joint_is_the_zero_target_loss(self):
    # One example, one joint 30 px right of its 16-px window: E2 is the sum
    # of the squared predictions (the zero target), not 0 (a masked window).
    predicted = np.random.default_rng(2).normal(size=(1, 16, 16, 1))
    targets, weights = fine.fine_targets(
        jnp.asarray([[[46.0, 8.0]]]), jnp.ones((1, 1)),
        jnp.zeros((1, 1, 2), jnp.int32), 16)
    e2 = losses.heatmap_loss(jnp.asarray(predicted, jnp.float32), targets,
                             weights)
    np.testing.assert_allclose(float(e2), np.sum(predicted**2), rtol=1e-5)
    _, masked = fine.fine_targets(
        jnp.asarray([[[46.0, 8.0]]]), jnp.ones((1, 1)),
        jnp.zeros((1, 1, 2), jnp.int32), 16, mask_outside=True)
    self.assertEqual(float(losses.heatmap_loss(
        jnp.asarray(predicted, jnp.float32), targets, masked)), 0.0)


class DecodeLocationsTest(chex.TestCase):

  def test_location_is_origin_plus_argmax(self):
    fine_heatmaps = np.zeros((1, 16, 16, 2), np.float32)
    fine_heatmaps[0, 3, 5, 0] = 1.0   # (x, y) = (5, 3)
    fine_heatmaps[0, 10, 2, 1] = 1.0  # (2, 10)
    fine_heatmaps[0, 10, 3, 1] = 0.5  # Right neighbour: +0.25 in x.
    origins = np.array([[[8, -8], [16, 0]]], np.int32)
    joints, peaks = fine.decode_locations(jnp.asarray(fine_heatmaps),
                                          jnp.asarray(origins))
    np.testing.assert_array_equal(joints, [[[13, -5], [18, 10]]])
    np.testing.assert_array_equal(peaks, [[1.0, 1.0]])
    joints, _ = fine.decode_locations(jnp.asarray(fine_heatmaps),
                                      jnp.asarray(origins), subpixel=True)
    np.testing.assert_array_equal(joints, [[[13, -5], [18.25, 10]]])
