"""Tests of the synthetic-people renderer."""

import numpy as np
import pytest

from cascade_jax import joint_sets
from cascade_jax.data import synthetic_figures as sf


def _moments(weights):
  """Centroid (x, y), principal-axis angle (deg) and area of a weight map."""
  ys, xs = np.mgrid[:weights.shape[0], :weights.shape[1]]
  area = weights.sum()
  cx, cy = (weights * xs).sum() / area, (weights * ys).sum() / area
  cov = np.cov(np.stack([xs.ravel(), ys.ravel()]), aweights=weights.ravel())
  evals, evecs = np.linalg.eigh(cov)
  major = evecs[:, np.argmax(evals)]
  return np.array([cx, cy]), np.degrees(np.arctan2(major[1], major[0])), area


def _capsule_weights(a, b, radius):
  canvas = np.zeros((64, 64, 3), np.float32)
  sf.draw_capsule(canvas, a, b, radius, radius, (255, 255, 255), shading=0.0)
  return canvas[..., 0] / 255.0


def test_capsule_axis_is_the_segment_to_subpixel_accuracy():
  a, b, radius = np.array([20.3, 30.7]), np.array([41.8, 22.15]), 3.0
  centroid, angle, area = _moments(_capsule_weights(a, b, radius))
  np.testing.assert_allclose(centroid, (a + b) / 2, atol=0.03)
  expected = np.degrees(np.arctan2(*(b - a)[::-1]))
  assert abs((angle - expected + 90) % 180 - 90) < 0.2
  length = np.linalg.norm(b - a)
  np.testing.assert_allclose(area, np.pi * radius**2 + 2 * radius * length,
                             rtol=0.01)


def test_capsule_follows_a_quarter_pixel_shift():
  a, b = np.array([20.0, 30.0]), np.array([40.0, 24.0])
  shift = np.array([0.25, -0.25])
  before, _, _ = _moments(_capsule_weights(a, b, 2.5))
  after, _, _ = _moments(_capsule_weights(a + shift, b + shift, 2.5))
  np.testing.assert_allclose(after - before, shift, atol=0.01)


def test_capsule_clipped_at_the_border_does_not_fail():
  canvas = np.zeros((16, 16, 3), np.float32)
  sf.draw_capsule(canvas, (-5.0, 3.0), (5.0, 30.0), 2.0, 2.0, (255, 0, 0))
  sf.draw_capsule(canvas, (-50.0, -50.0), (-40.0, -40.0), 2.0, 2.0, (0, 255, 0))
  assert canvas[..., 0].max() > 0 and canvas[..., 1].max() == 0


def _scene(seed, upper_body=False, **difficulty):
  return sf.render_scene(np.random.default_rng(seed), (96, 128),
                         sf.Difficulty(**difficulty), upper_body)


@pytest.mark.parametrize('back_facing_prob', [0.0, 1.0])
def test_labels_follow_the_person(back_facing_prob):
  """Front-facing: the person's left is on the image right; back: reverse."""
  lsho, rsho = sf.BODY_JOINTS.index('l_shoulder'), sf.BODY_JOINTS.index(
      'r_shoulder')
  lhip, rhip = sf.BODY_JOINTS.index('l_hip'), sf.BODY_JOINTS.index('r_hip')
  for seed in range(20):
    figure = _scene(seed, back_facing_prob=back_facing_prob,
                    rotation_deg=0.0).figure
    assert figure.back_facing == (back_facing_prob == 1.0)
    sign = -1 if figure.back_facing else 1
    assert sign * (figure.joints[lsho, 0] - figure.joints[rsho, 0]) > 0
    assert sign * (figure.joints[lhip, 0] - figure.joints[rhip, 0]) > 0


def test_pose_has_human_proportions():
  for seed in range(20):
    pose = sf.sample_pose(np.random.default_rng(seed), back_facing=False)
    j = {name: pose[i] for i, name in enumerate(sf.BODY_JOINTS)}
    # Head above shoulders above hips; limbs no longer than their rest length.
    assert j['head_top'][1] < j['upper_neck'][1] < j['thorax'][1]
    assert j['thorax'][1] < j['pelvis'][1]
    assert np.linalg.norm(j['l_elbow'] - j['l_shoulder']) <= 0.175 + 1e-9
    assert np.linalg.norm(j['r_ankle'] - j['r_knee']) <= 0.235 + 1e-9
    assert np.linalg.norm(j['head_top'] - j['r_ankle']) < 1.1


def test_same_seed_same_scene_and_different_seeds_differ():
  first, again, other = _scene(3), _scene(3), _scene(4)
  np.testing.assert_array_equal(first.image, again.image)
  np.testing.assert_array_equal(first.figure.joints, again.figure.joints)
  assert not np.array_equal(first.image, other.image)
  assert first.image.shape == (96, 128, 3) and first.image.dtype == np.uint8


def test_distractor_count_follows_the_difficulty():
  counts = {len(_scene(s, num_distractors=(0, 2)).distractors)
            for s in range(30)}
  assert counts == {0, 1, 2}
  assert all(len(_scene(s, num_distractors=(1, 1)).distractors) == 1
             for s in range(5))


def test_figure_is_framed_at_the_image_centre_with_the_configured_height():
  for upper_body in (False, True):
    figure = _scene(0, upper_body=upper_body, center_jitter=0.0,
                    rotation_deg=0.0, figure_height=(0.5, 0.5)).figure
    framed = figure.framed_joints(upper_body)
    np.testing.assert_allclose((framed.min(0) + framed.max(0)) / 2,
                               ((128 - 1) / 2, (96 - 1) / 2), atol=1e-6)
    assert figure.height == pytest.approx(0.5 * 96 / (0.53 if upper_body
                                                      else 1.0))


def test_joints_for_every_joint_set():
  figure = _scene(1).figure
  for joint_set in joint_sets.JOINT_SETS.values():
    assert figure.joints_for(joint_set).shape == (joint_set.num_joints, 2)


def test_visible_in_uses_the_pixel_centre_convention():
  joints = np.array([[-0.5, 0.0], [-0.51, 0.0], [127.49, 95.49], [127.5, 0.0]])
  np.testing.assert_array_equal(sf.visible_in(joints, (96, 128)),
                                [True, False, True, False])


def test_bad_difficulty_names_the_value():
  with pytest.raises(ValueError, match=r'num_distractors.*\(0, 3\)'):
    sf.Difficulty(num_distractors=(0, 3))
  with pytest.raises(ValueError, match='figure_height'):
    sf.Difficulty(figure_height=(0.0, 0.5))
  with pytest.raises(ValueError, match='occlusion_prob'):
    sf.Difficulty(occlusion_prob=1.5)
