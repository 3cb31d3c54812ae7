"""Geometry: the warp moves joints exactly as it moves the image."""

import numpy as np
import pytest

from cascade_jax import geometry
from cascade_jax import joint_sets


def _render_dot(size, centre, sigma=1.2):
  """A smooth dot, so that bilinear warps keep its centroid."""
  height, width = size
  ys, xs = np.mgrid[0:height, 0:width]
  return np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2)
                / (2 * sigma ** 2)).astype(np.float32)


def _centroid(image):
  ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
  total = image.sum()
  return np.array([(xs * image).sum() / total, (ys * image).sum() / total])


@pytest.mark.parametrize('rotation, flip, box', [
    (0.0, False, (60, 60)),
    (17.0, False, (80, 50)),
    (-20.0, True, (40, 40)),
    (90.0, True, (100, 70)),
])
def test_warp_moves_a_dot_where_the_matrix_moves_its_point(rotation, flip, box):
  dot = np.array([41.3, 27.6])
  image = _render_dot((80, 100), dot)
  matrix = geometry.crop_matrix(center=(45.0, 35.0), box_size=box,
                                output_size=(64, 64), rotation_deg=rotation,
                                flip=flip)
  warped = geometry.warp_image(image, matrix, (64, 64))
  expected = geometry.transform_points(matrix, dot)
  # The dot is blurred by the resampling but stays symmetric about its centre.
  np.testing.assert_allclose(_centroid(warped), expected, atol=0.05)


def test_crop_matrix_maps_box_centre_and_corners():
  matrix = geometry.crop_matrix(center=(10, 20), box_size=(40, 20),
                                output_size=(81, 41))
  np.testing.assert_allclose(geometry.transform_points(matrix, [10, 20]),
                             [40, 20])
  # Box edges at centre +- half the box land on the output's outer edges.
  np.testing.assert_allclose(
      geometry.transform_points(matrix, [[-10, 10], [30, 30]]),
      [[-0.5, -0.5], [80.5, 40.5]], atol=1e-9)


def test_rotation_is_counter_clockwise_on_screen():
  matrix = geometry.crop_matrix(center=(0, 0), box_size=(11, 11),
                                output_size=(11, 11), rotation_deg=90)
  # A point to the right of the centre goes above it (smaller y) on screen.
  np.testing.assert_allclose(geometry.transform_points(matrix, [3, 0]),
                             [5, 2], atol=1e-9)


def test_invert_round_trips_points():
  matrix = geometry.crop_matrix((31, 17), (50, 70), (64, 48), 13.0, True)
  points = np.random.default_rng(0).uniform(0, 60, (5, 2))
  back = geometry.transform_points(
      geometry.invert(matrix), geometry.transform_points(matrix, points))
  np.testing.assert_allclose(back, points, atol=1e-9)


def test_flip_mirrors_coordinates_and_swaps_labels():
  joint_set = joint_sets.FLIC
  joints = np.zeros((joint_set.num_joints, 2))
  joints[joint_set.index('l_shoulder')] = [40.0, 10.0]
  joints[joint_set.index('r_shoulder')] = [20.0, 10.0]
  visible = np.ones(joint_set.num_joints, bool)
  visible[joint_set.index('r_wrist')] = False
  matrix = geometry.crop_matrix((30, 30), (61, 61), (61, 61), flip=True)
  mirrored = geometry.transform_points(matrix, joints)
  flipped, flipped_visible = geometry.flip_joints(
      mirrored, visible, joint_set.flip_permutation)
  # The person's left shoulder is now the one drawn where the right one was.
  np.testing.assert_allclose(flipped[joint_set.index('l_shoulder')], [40, 10])
  np.testing.assert_allclose(flipped[joint_set.index('r_shoulder')], [20, 10])
  assert not flipped_visible[joint_set.index('l_wrist')]
  assert flipped_visible[joint_set.index('r_wrist')]
  assert visible[joint_set.index('r_wrist')] == 0  # input untouched


def test_bad_box_size_raises():
  with pytest.raises(ValueError, match='box_size'):
    geometry.crop_matrix((0, 0), (0, 10), (10, 10))
