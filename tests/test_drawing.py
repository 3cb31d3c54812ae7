"""Skeleton overlays and heat-map panels."""

import numpy as np
import pytest

from cascade_jax import drawing
from cascade_jax import joint_sets


def test_limbs_are_coloured_by_the_persons_side():
  colours = dict(zip(joint_sets.FLIC.edges,
                     drawing.limb_colours(joint_sets.FLIC)))
  assert colours[('l_shoulder', 'l_elbow')] == drawing.LEFT_COLOUR
  assert colours[('r_elbow', 'r_wrist')] == drawing.RIGHT_COLOUR
  assert colours[('l_shoulder', 'r_shoulder')] == drawing.CENTRE_COLOUR


def _joints():
  """FLIC joints of an upright figure in a 100 x 100 image."""
  return np.array([[60, 30], [65, 50], [66, 70], [40, 30], [35, 50], [34, 70],
                   [58, 75], [42, 75], [53, 15], [47, 15], [50, 20]], float)


def test_draw_skeleton_draws_each_limb_in_its_colour_and_copies():
  image = np.zeros((100, 100, 3), np.uint8)
  drawn = drawing.draw_skeleton(image, _joints(), joint_sets.FLIC)
  assert not image.any()  # the input is untouched
  # Midpoints of the left upper arm and the right forearm.
  np.testing.assert_array_equal(drawn[40, 62], drawing.LEFT_COLOUR)
  np.testing.assert_array_equal(drawn[60, 35], drawing.RIGHT_COLOUR)
  # Far from every limb nothing is drawn.
  assert not drawn[95, 5].any()


def test_draw_skeleton_draws_ground_truth_rings():
  image = np.zeros((100, 100, 3), np.uint8)
  truth = np.full((11, 2), 90.0)
  visible = np.zeros(11, bool)
  visible[0] = True
  drawn = drawing.draw_skeleton(image, _joints(), joint_sets.FLIC, truth,
                                visible)
  ring = drawn[90, 94]  # on the anti-aliased ring of radius 2 * 2 px
  assert ring.min() > 150 and ring.min() == ring.max()  # grey to white
  assert not drawn[90, 90].any()  # a ring, not a dot


def test_draw_skeleton_rejects_the_wrong_joint_count():
  with pytest.raises(ValueError, match=r'\(11, 2\)'):
    drawing.draw_skeleton(np.zeros((8, 8, 3), np.uint8), np.zeros((3, 2)),
                          joint_sets.FLIC)


def test_enlarge_keeps_points_on_their_pixels():
  image = np.zeros((64, 32, 3), np.uint8)
  image[10, 20] = 255
  big, points = drawing.enlarge(image, np.array([[20.0, 10.0]]), min_side=128)
  assert big.shape == (256, 128, 3)  # factor 4 for the shorter side
  x, y = points[0]
  np.testing.assert_allclose(points, [[81.5, 41.5]])  # centre of the 4x4 block
  assert big[int(y), int(x)].all() and big[int(y) + 1, int(x) + 1].all()


def test_heatmap_panel_has_one_tile_per_joint_plus_the_input():
  crop = np.zeros((64, 64, 3), np.uint8)
  heatmaps = np.zeros((8, 8, 11), np.float32)
  heatmaps[2, 3, 0] = 1.0
  panel = drawing.heatmap_panel(crop, heatmaps, joint_sets.FLIC, tile=32)
  assert panel.shape == (32 + 16, 12 * 32, 3)
  # The peak of joint 0 (second tile) is its hottest ('jet' red) cell.
  tile = panel[:32, 32:64].astype(int)
  assert np.unravel_index(np.argmax(tile[..., 0] - tile[..., 2]),
                          (32, 32)) == (8, 12)
