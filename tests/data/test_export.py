"""Tests for cascade_jax.data.export: the synthetic people as FLIC and MPII
releases, read back by the real builders."""

import io

import numpy as np
from PIL import Image
import pytest
import scipy.io

from cascade_jax import joint_sets
from cascade_jax.data import export
from cascade_jax.data import manual_files
from cascade_jax.data.flic import flic
from cascade_jax.data.mpii import mpii
from cascade_jax.data.mpii import valid_split
from tests.data import fixtures

SIZE = (48, 72)  # (H, W): the FLIC frames' 2:3 at a test's size.


@pytest.fixture(scope='module')
def flic_export(tmp_path_factory):
  root = tmp_path_factory.mktemp('flic_export')
  settings = export.ExportSettings(image_size=SIZE, num_train=6, num_test=4,
                                   back_facing_prob=0.5, distractor_prob=0.5)
  export.export_flic(root, settings, log=lambda _: None)
  return root, settings, flic.build(root, root / 'tfds')


def test_flic_export_reads_back_as_the_synthetic_records(flic_export):
  _, settings, builder = flic_export
  for split, key in (('train', 'train'), ('test', 'test')):
    source = builder.as_data_source(split)
    count = settings.num_train if split == 'train' else settings.num_test
    assert len(source) == count
    for index in range(count):
      scene, expected = export.render(settings, 'flic', key, index)
      got = source[index]
      np.testing.assert_array_equal(got['visible'], expected['visible'])
      visible = expected['visible']
      np.testing.assert_array_equal(got['joints'][visible],
                                    expected['joints'][visible])
      np.testing.assert_array_equal(got['joints'][~visible], 0.0)
      # torsobox is single in examples.mat: the +1 / -1 rounds in float32.
      np.testing.assert_allclose(got['torso_box'], expected['torso_box'],
                                 atol=1e-4)
      np.testing.assert_allclose(got['torso_center'],
                                 expected['torso_center'], atol=1e-4)
      assert got['person_scale'] == SIZE[0]  # FLIC: the frame height
      assert bool(got['backward_facing']) == bool(
          scene.figure.back_facing)
      # The rendered image, as JPEG.
      jpeg = np.asarray(Image.open(io.BytesIO(export.encode_jpeg(
          scene.image))).convert('RGB'))
      np.testing.assert_allclose(got['image'], jpeg, atol=1)


def test_flic_export_has_the_release_fields_and_classes(flic_export):
  root, settings, _ = flic_export
  ours = scipy.io.loadmat(root / 'FLIC' / 'examples.mat')['examples']
  assert ours.shape == (1, settings.num_train + settings.num_test)
  specimen_path = fixtures.SPECIMENS / 'flic' / 'examples.mat'
  if not specimen_path.exists():
    pytest.skip('FLIC specimen not present')
  real = scipy.io.loadmat(specimen_path)['examples']
  assert ours.dtype.names == real.dtype.names
  for name in real.dtype.names:
    assert ours[0, 0][name].dtype.kind == real[0, 0][name].dtype.kind, name
    if ours[0, 0][name].dtype.kind != 'U':
      assert ours[0, 0][name].dtype == real[0, 0][name].dtype, name
    if name == 'poselet_hit_idx':  # A column, empty: no poselets were run.
      assert ours[0, 0][name].shape[1] == real[0, 0][name].shape[1] == 1
    elif name not in ('moviename', 'filepath'):
      assert ours[0, 0][name].shape == real[0, 0][name].shape, name
  coords = ours[0, 0]['coords']
  unused = np.setdiff1d(np.arange(flic.NUM_COORDS), flic.COORD_COLUMNS)
  assert np.isnan(coords[:, unused]).all()
  flags = [(int(e['istrain'][0, 0]), int(e['istest'][0, 0])) for e in ours[0]]
  assert flags == [(1, 0)] * settings.num_train + [(0, 1)] * settings.num_test


def test_export_draws_distractors_per_example():
  settings = export.ExportSettings(image_size=SIZE, num_train=40,
                                   distractor_prob=0.3)
  counts = [int(export.render(settings, 'flic', 'train', i)[1]
                ['num_distractors']) for i in range(40)]
  assert set(counts) == {0, 1}
  # The draw is a function of the example, not of the order of rendering.
  again = export.example_config(settings, 'flic', 'train', 7)
  assert again.difficulty.num_distractors == ((1, 1) if counts[7] else (0, 0))


@pytest.fixture(scope='module')
def mpii_export(tmp_path_factory):
  root = tmp_path_factory.mktemp('mpii_export')
  settings = export.ExportSettings(image_size=(64, 64), num_train=5,
                                   num_test=4, num_unlabelled=2,
                                   distractor_prob=1.0,
                                   distractor_range=(1, 2))
  release, valid = export.export_mpii(root, settings, log=lambda _: None)
  return root, settings, release, valid


def test_mpii_export_builds_with_its_validation_split(mpii_export, tmp_path):
  root, settings, _, valid = mpii_export
  builder = mpii.build(root, tmp_path / 'tfds', valid_split_file=valid)
  validation = builder.as_data_source('validation')
  assert len(validation) == settings.num_test
  for index in range(settings.num_test):
    scene, expected = export.render(settings, 'mpii', 'test', index)
    got = validation[index]
    visible = expected['visible']
    np.testing.assert_array_equal(got['visible'], visible)
    np.testing.assert_allclose(got['joints'][visible],
                               expected['joints'][visible], atol=1e-4)
    np.testing.assert_allclose(got['person_center'],
                               expected['person_center'], atol=1e-4)
    np.testing.assert_allclose(got['person_scale'], expected['person_scale'],
                               rtol=1e-5)
    np.testing.assert_allclose(
        got['head_box'],
        export.head_box(scene.figure.joints_for(joint_sets.MPII)), atol=1e-4)
    # Every other person of the image is annotated and travels along.
    assert got['num_distractors'] == len(scene.distractors) >= 1
    assert got['annorect_index'] == 0
  # Train: every person of the training images and the validation images'
  # other people (the split is by person, as MPII's); test: the unlabelled.
  train_people = sum(1 + len(export.render(settings, 'mpii', 'train', i)[0]
                                 .distractors) for i in range(5))
  valid_others = sum(len(export.render(settings, 'mpii', 'test', i)[0]
                         .distractors) for i in range(4))
  assert len(builder.as_data_source('train')) == train_people + valid_others
  test = builder.as_data_source('test')
  assert len(test) == sum(
      1 + len(export.render(settings, 'mpii', 'unlabelled', i)[0].distractors)
      for i in range(2))
  assert not np.asarray(test[0]['visible']).any()


def test_mpii_head_size_is_the_head_segment(mpii_export):
  """PCKh's head size (0.6 x the box diagonal) is 0.6 sqrt(2) x the
  upper_neck - head_top distance."""
  _, settings, _, valid = mpii_export
  persons = mpii.read_validation_persons(valid)
  assert len(persons) == settings.num_test
  scene, _ = export.render(settings, 'mpii', 'test', 0)
  joints = scene.figure.joints_for(joint_sets.MPII)
  segment = np.linalg.norm(joints[9] - joints[8])
  box = persons[0].head_box
  assert 0.6 * np.linalg.norm(box[2:] - box[:2]) == pytest.approx(
      0.6 * np.sqrt(2) * segment, rel=1e-4)


def test_valid_split_file_selects_the_listed_persons(mpii_export, tmp_path):
  root, _, release_path, _ = mpii_export
  release = mpii.read_release(release_path)
  # 1-based (image, person): the second person of image 2, the first of 7.
  chosen = [(2, 2), (7, 1)]
  assert len(release.persons[1]) >= 2
  split_path = tmp_path / 'my_split.mat'
  scipy.io.savemat(split_path, {
      'RELEASE_img_index': np.array([[i for i, _ in chosen]], np.uint16),
      'RELEASE_person_index': np.array([[p for _, p in chosen]], np.uint8)})
  builder = mpii.build(root, tmp_path / 'tfds', valid_split_file=split_path)
  validation = builder.as_data_source('validation')
  got = [(int(r['annolist_index']) + 1, int(r['annorect_index']) + 1)
         for r in (validation[i] for i in range(len(validation)))]
  assert got == chosen
  np.testing.assert_allclose(validation[0]['joints'][validation[0]['visible']],
                             release.persons[1][1].joints[
                                 release.persons[1][1].visible])
  train = builder.as_data_source('train')
  train_pairs = {(int(train[i]['annolist_index']) + 1,
                  int(train[i]['annorect_index']) + 1)
                 for i in range(len(train))}
  assert not train_pairs & set(chosen)
  with pytest.raises(manual_files.ManualFileError,
                     match='built with the validation split'):
    mpii.build(root, tmp_path / 'tfds')


def test_the_standard_split_does_not_fit_other_files(mpii_export, tmp_path):
  root, *_ = mpii_export
  with pytest.raises(manual_files.ManualFileError,
                     match=r'valid_split\.json.*should be an annotated person'):
    mpii.build(root, tmp_path / 'tfds')


@pytest.mark.parametrize('pairs, match', [
    ([(99, 1)], r'RELEASE_img_index=99.*my_split\.mat'),
    ([(10, 1)], r'RELEASE_img_index=10.*training image'),  # an unlabelled one
    ([(1, 1), (1, 1)], 'lists a person twice'),
    ([(0, 1)], '1-based'),
])
def test_bad_valid_split_file_names_it(mpii_export, tmp_path, pairs, match):
  root, *_ = mpii_export
  split_path = tmp_path / 'my_split.mat'
  scipy.io.savemat(split_path, {
      'RELEASE_img_index': np.array([[i for i, _ in pairs]], np.int32),
      'RELEASE_person_index': np.array([[p for _, p in pairs]], np.int32)})
  with pytest.raises(manual_files.ManualFileError, match=match):
    mpii.build(root, tmp_path / 'tfds', valid_split_file=split_path)


def test_valid_split_file_must_be_a_mat(tmp_path):
  path = tmp_path / 'split.json'
  path.write_text('{}')
  with pytest.raises(manual_files.ManualFileError,
                     match='valid_split_file=.*split.json.*expected a .mat'):
    valid_split.load_other(path)


@pytest.mark.parametrize('field, value, match', [
    ('image_size', (8, 8), 'image_size'),
    ('num_test', 0, 'num_test'),
    ('distractor_prob', 1.5, 'distractor_prob'),
    ('distractor_range', (0, 1), 'distractor_range'),
])
def test_bad_export_settings_are_rejected(field, value, match):
  with pytest.raises(ValueError, match=match):
    export.ExportSettings(**{field: value})
