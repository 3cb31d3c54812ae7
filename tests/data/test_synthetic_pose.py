"""Tests of the synthetic_pose TFDS builder (array_record, read without TF)."""

import pathlib

import numpy as np
import pytest

from cascade_jax import joint_sets
from cascade_jax.data import synthetic_figures
from cascade_jax.data.synthetic_pose import synthetic_pose
from cascade_jax.data.synthetic_pose import SyntheticPose
from cascade_jax.data.synthetic_pose import SyntheticPoseConfig

_SMALL = dict(num_train=6, num_test=3, image_size=(64, 80))


def _build(data_dir, **overrides):
  config = SyntheticPoseConfig(**{**_SMALL, **overrides})
  builder = SyntheticPose(config=config, data_dir=str(data_dir))
  builder.download_and_prepare()
  return builder


def _examples(builder, split):
  source = builder.as_data_source(split)
  return [source[i] for i in range(len(source))]


@pytest.fixture(scope='module', params=['flic', 'mpii'])
def built(request, tmp_path_factory):
  return _build(tmp_path_factory.mktemp(request.param),
                joint_set=request.param)


def test_the_synthetic_builder_is_deterministic(built, tmp_path):
  config = built.builder_config
  again = _build(tmp_path, **_SMALL, joint_set=config.joint_set)
  for split in ('train', 'test'):
    first, second = _examples(built, split), _examples(again, split)
    assert len(first) == len(second) > 0
    for a, b in zip(first, second):
      assert a.keys() == b.keys()
      for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  files = sorted(p.name for p in
                 pathlib.Path(built.data_dir).glob('*.array_record*'))
  assert files
  for name in files:
    assert (pathlib.Path(built.data_dir, name).read_bytes()
            == pathlib.Path(again.data_dir, name).read_bytes()), name


def test_shapes_and_dtypes(built):
  config = built.builder_config
  num_joints = joint_sets.get(config.joint_set).num_joints
  source = built.as_data_source('train')
  assert len(source) == 6 and len(built.as_data_source('test')) == 3
  ex = source[0]
  expected = {
      'image': ((64, 80, 3), np.uint8), 'joints': ((num_joints, 2), np.float32),
      'visible': ((num_joints,), np.bool_), 'torso_box': ((4,), np.float32),
      'torso_center': ((2,), np.float32), 'person_center': ((2,), np.float32),
      'distractor_joints': ((2, num_joints, 2), np.float32)}
  assert set(ex) == set(expected) | {'person_scale', 'num_distractors'}
  for key, (shape, dtype) in expected.items():
    assert ex[key].shape == shape and ex[key].dtype == dtype, key
  assert isinstance(ex['person_scale'], float)
  assert isinstance(ex['num_distractors'], int)


def test_source_index_is_the_rendered_example(built):
  """Records keep index order, and images decode to the rendered RGB."""
  config = built.builder_config
  for split in ('train', 'test'):
    source = built.as_data_source(split)
    for i in (0, len(source) - 1):
      rng = np.random.default_rng(
          [config.seed, synthetic_pose._SPLIT_IDS[split], i])
      scene = synthetic_figures.render_scene(
          rng, config.image_size, config.difficulty, config.upper_body)
      np.testing.assert_array_equal(source[i]['image'], scene.image)


def test_torso_and_person_annotations_are_consistent(built):
  joint_set = joint_sets.get(built.builder_config.joint_set)
  for ex in _examples(built, 'train'):
    torso = ex['joints'][[joint_set.index(j) for j in
                          ('l_shoulder', 'r_shoulder', 'l_hip', 'r_hip')]]
    np.testing.assert_allclose(ex['torso_box'],
                               np.concatenate([torso.min(0), torso.max(0)]),
                               atol=1e-4)
    np.testing.assert_allclose(ex['torso_center'],
                               (ex['torso_box'][:2] + ex['torso_box'][2:]) / 2,
                               atol=1e-4)
    # Shoulder to hip is about a third of the standing height.
    shoulder_hip = np.linalg.norm(torso[0] - torso[2])
    assert 0.2 < shoulder_hip / ex['person_scale'] < 0.45


def test_visible_means_inside_the_image(tmp_path):
  hard = synthetic_figures.Difficulty(figure_height=(1.1, 1.4),
                                      center_jitter=0.3)
  builder = _build(tmp_path, joint_set='mpii', num_train=12, difficulty=hard)
  visible = []
  for ex in _examples(builder, 'train'):
    x, y = ex['joints'][:, 0], ex['joints'][:, 1]
    inside = (x >= -0.5) & (x < 80 - 0.5) & (y >= -0.5) & (y < 64 - 0.5)
    np.testing.assert_array_equal(ex['visible'], inside)
    visible.append(ex['visible'])
  visible = np.concatenate(visible)
  assert visible.any() and not visible.all()


def test_distractors_within_range_and_zero_padded(built):
  counts = []
  for ex in _examples(built, 'train') + _examples(built, 'test'):
    n = ex['num_distractors']
    assert 0 <= n <= 2
    assert np.all(ex['distractor_joints'][n:] == 0)
    assert np.all(np.abs(ex['distractor_joints'][:n]).sum(axis=(1, 2)) > 0)
    counts.append(n)
  assert max(counts) > 0


def test_no_distractors_when_the_range_is_zero(tmp_path):
  builder = _build(tmp_path, difficulty=synthetic_figures.Difficulty(
      num_distractors=(0, 0)))
  assert all(ex['num_distractors'] == 0 for ex in _examples(builder, 'train'))


def test_different_seeds_and_splits_give_different_images(built, tmp_path):
  config = built.builder_config
  other = _build(tmp_path, joint_set=config.joint_set, seed=1)
  assert built.data_dir != other.data_dir
  for a, b in zip(_examples(built, 'train'), _examples(other, 'train')):
    assert not np.array_equal(a['image'], b['image'])
  train, test = _examples(built, 'train'), _examples(built, 'test')
  assert not np.array_equal(train[0]['image'], test[0]['image'])


def test_config_names_encode_non_default_values():
  assert SyntheticPoseConfig(joint_set='mpii').name == 'mpii'
  config = SyntheticPoseConfig(
      joint_set='flic', num_train=64, image_size=(96, 96),
      difficulty=synthetic_figures.Difficulty(occlusion_prob=0.5))
  assert config.name == 'flic_image_size-96x96_num_train-64_occlusion_prob-0.5'
  assert SyntheticPose.BUILDER_CONFIGS[1].name == 'mpii'
  with pytest.raises(ValueError, match='derived'):
    SyntheticPoseConfig(name='mine', joint_set='flic')
  with pytest.raises(KeyError, match='unknown joint set'):
    SyntheticPoseConfig(joint_set='coco')


def test_a_default_valued_config_is_the_predefined_one(tmp_path):
  builder = SyntheticPose(config=SyntheticPoseConfig(joint_set='mpii'),
                          data_dir=str(tmp_path))
  assert builder.builder_config is SyntheticPose.BUILDER_CONFIGS[1]
