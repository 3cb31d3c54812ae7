"""Heat-map codec: targets peak at their sub-pixel location; decode inverts."""

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from cascade_jax import heatmaps


def _parabola_peak(values):
  """Sub-cell peak of three samples around a maximum."""
  left, centre, right = values
  return 0.5 * (left - right) / (left - 2 * centre + right)


@pytest.mark.parametrize('stride', [1, 4, 8])
def test_gaussian_target_peaks_at_its_subpixel_location(stride):
  cell = np.array([9.3, 5.8])
  joint = heatmaps.heatmap_to_input(cell, stride)[None]
  targets, weights = heatmaps.encode(joint, [True], (16, 16), stride, 1.5)
  chex.assert_shape(targets, (16, 16, 1))
  np.testing.assert_array_equal(weights, [1.0])
  np.testing.assert_allclose(heatmaps.input_to_heatmap(joint[0], stride), cell)
  row, col = np.unravel_index(np.argmax(targets[..., 0]), (16, 16))
  assert (col, row) == tuple(np.round(cell).astype(int))
  # The log of a Gaussian is a parabola: its vertex is the exact centre.
  log_map = np.log(targets[..., 0])
  x_peak = col + _parabola_peak(log_map[row, col - 1:col + 2])
  y_peak = row + _parabola_peak(log_map[row - 1:row + 2, col])
  np.testing.assert_allclose([x_peak, y_peak], cell, atol=1e-4)
  np.testing.assert_allclose(targets.max(), np.exp(
      -np.sum((np.round(cell) - cell) ** 2) / (2 * 1.5 ** 2)), rtol=1e-5)


def test_invisible_and_outside_joints_get_zero_maps_and_weights():
  joints = np.array([[10.0, 10.0], [10.0, 10.0], [500.0, 3.0]])
  targets, weights = heatmaps.encode(joints, [1, 0, 1], (8, 8), 4)
  np.testing.assert_array_equal(weights, [1.0, 0.0, 0.0])
  assert targets[..., 0].max() > 0.5
  assert not targets[..., 1:].any()


def test_cell_centre_convention():
  # Cell j at stride 8 covers input pixels 8j .. 8j + 7, centre 8j + 3.5.
  np.testing.assert_allclose(heatmaps.heatmap_to_input(np.array([0., 2.]), 8),
                             [3.5, 19.5])
  np.testing.assert_allclose(heatmaps.input_to_heatmap(np.array([19.5]), 8),
                             [2.0])


@pytest.mark.parametrize('xp', [np, jnp], ids=['numpy', 'jax'])
def test_decode_returns_argmax_in_input_pixels(xp):
  maps = np.zeros((2, 6, 7, 3), np.float32)
  maps[0, 1, 2, 0] = 1.0
  maps[0, 5, 6, 1] = 2.0
  maps[0, 0, 0, 2] = 3.0
  maps[1, 3, 4, :] = 0.5
  joints, scores = heatmaps.decode(xp.asarray(maps), stride=4)
  chex.assert_shape(joints, (2, 3, 2))
  np.testing.assert_allclose(np.asarray(joints[0]),
                             [[9.5, 5.5], [25.5, 21.5], [1.5, 1.5]])
  np.testing.assert_allclose(np.asarray(joints[1]), [[17.5, 13.5]] * 3)
  np.testing.assert_allclose(np.asarray(scores), [[1, 2, 3], [.5, .5, .5]])


def test_decode_subpixel_moves_towards_the_larger_neighbour():
  maps = np.zeros((5, 5, 1), np.float32)
  maps[2, 2, 0] = 1.0
  maps[2, 3, 0] = 0.6  # right neighbour
  maps[1, 2, 0] = 0.3  # upper neighbour
  joints, _ = heatmaps.decode(maps, stride=1, subpixel=True)
  np.testing.assert_allclose(joints[0], [2.25, 1.75])


def test_encode_then_decode_recovers_the_cell():
  rng = np.random.default_rng(1)
  joints = rng.uniform(0, 63, (5, 2))
  targets, _ = heatmaps.encode(joints, np.ones(5, bool), (8, 8), 8)
  decoded, _ = heatmaps.decode(targets, 8)
  # Argmax decoding is exact to within half a cell.
  assert np.abs(decoded - joints).max() <= 4.0 + 1e-6


@pytest.mark.parametrize('xp', [np, jnp])
def test_dark_recovers_a_gaussians_sub_pixel_centre(xp):
  # Targets of joints at least 3 cells from the border of a 16x16 map at
  # stride 8: the log of a Gaussian is quadratic, so DARK's Taylor step
  # lands on the centre (up to the blur's zero padding, within 0.05 px);
  # the argmax is up to half a cell (4 px) off.
  rng = np.random.default_rng(3)
  joints = rng.uniform(3 * 8 + 3.5, 12 * 8 + 3.5, (6, 2))
  targets, _ = heatmaps.encode(joints, np.ones(6, bool), (16, 16), 8)
  decoded, scores = heatmaps.decode_dark(xp.asarray(targets[None]), 8)
  chex.assert_shape(decoded, (1, 6, 2))
  np.testing.assert_allclose(np.asarray(decoded[0]), joints, atol=0.05)
  np.testing.assert_allclose(np.asarray(scores), np.max(targets, (0, 1))[None])
  argmax, _ = heatmaps.decode(targets, 8)
  assert np.abs(argmax - joints).max() > 1.0


def test_dark_keeps_the_argmax_at_the_border_and_on_a_flat_map():
  maps = np.zeros((8, 8, 2), np.float32)
  maps[0, 5, 0] = 1.0  # Top row: no second-order neighbourhood.
  maps[..., 1] = 0.5   # Flat: no curvature, argmax (0, 0).
  maps[0, 6, 0] = 0.6
  decoded, _ = heatmaps.decode_dark(maps, 4)
  np.testing.assert_allclose(decoded, [[5 * 4 + 1.5, 1.5], [1.5, 1.5]])


def test_value_at_reads_each_joints_map_at_its_cell():
  maps = np.zeros((1, 4, 5, 2), np.float32)
  maps[0, 1, 3, 0] = 7.0   # joint 0 at (x, y) = (3, 1)
  maps[0, 3, 4, 1] = -2.0  # joint 1 at (4, 3)
  cells = np.array([[[3, 1], [9, 3]]])  # x = 9 clipped to 4
  np.testing.assert_array_equal(heatmaps.value_at(maps, cells), [[7.0, -2.0]])
