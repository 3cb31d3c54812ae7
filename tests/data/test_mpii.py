"""Tests of the MPII builder on fixtures in the original format and on the specimens."""

import json

import numpy as np
import pytest
import scipy.io

from cascade_jax.data import manual_files
from cascade_jax.data.mpii import mpii
from cascade_jax.data.mpii import valid_split
from tests.data import fixtures

MPII_SPECIMENS = fixtures.SPECIMENS / 'mpii'
needs_specimens = pytest.mark.skipif(not MPII_SPECIMENS.is_dir(),
                                     reason='no ../shared/specimens')


def _write(manual_dir, images=None):
  images = images or fixtures.mpii_images()
  fixtures.write_mpii(manual_dir, fixtures.mpii_release(images),
                      [name for name, _, _ in images])


@pytest.fixture
def fixture_validation(monkeypatch):
  """The fixture's validation split: person 2 of image 1 (1-based)."""
  monkeypatch.setattr(valid_split, 'load', lambda: np.array([[0, 1]]))


@pytest.fixture
def built(tmp_path, fixture_validation):
  del fixture_validation
  _write(tmp_path / 'manual')
  return mpii.build(tmp_path / 'manual', tmp_path / 'tfds')


def test_splits(built):
  sources = {s: built.as_data_source(s) for s in ('train', 'validation', 'test')}
  pairs = {s: [(int(r['annolist_index']), int(r['annorect_index']))
               for r in source] for s, source in sources.items()}
  # Unannotated persons, people without scale and held-out persons are not
  # trained on; every located person of a test image is a test example.
  assert pairs == {'train': [(0, 0), (1, 0)], 'validation': [(0, 1)],
                   'test': [(3, 0), (3, 1)]}


def test_person_fields(built):
  record = built.as_data_source('train')[0]
  assert record['image'].shape == (24, 32, 3)
  assert record['image_name'] == b'a.jpg'
  joints = np.array([[5.0 + j - 1, 20.0 - j - 1] for j in range(16)])
  np.testing.assert_allclose(record['joints'], joints)
  assert record['visible'].all()
  # is_visible 1, 0, '1', '0', [] by id % 5: 0 and '0' are occluded.
  np.testing.assert_array_equal(np.flatnonzero(record['occluded']),
                                [1, 3, 6, 8, 11, 13])
  np.testing.assert_allclose(record['head_box'], [9, 3, 13, 8])
  np.testing.assert_allclose(record['person_center'], [11, 13])
  np.testing.assert_allclose(record['person_scale'], 20.0)


def test_other_annotated_people_are_distractors(built):
  record = built.as_data_source('train')[0]
  assert record['num_distractors'] == 1
  other = record['distractor_joints'][0]
  assert record['distractor_visible'][0].sum() == 12
  np.testing.assert_allclose(other[0], [4 + 3, 19])
  assert not record['distractor_visible'][1:].any()
  assert built.as_data_source('train')[1]['num_distractors'] == 0


def test_single_point_and_unlabelled_test_persons(built):
  record = built.as_data_source('train')[1]
  assert np.flatnonzero(record['visible']).tolist() == [9]
  assert not record['occluded'].any()  # is_visible '' is unknown.
  test = built.as_data_source('test')[1]
  assert not test['visible'].any() and not test['joints'].any()
  np.testing.assert_allclose(test['head_box'], 0)
  np.testing.assert_allclose(test['person_center'], [16, 7])
  np.testing.assert_allclose(test['person_scale'], 80)


def test_missing_annotation_file_names_it(tmp_path):
  (tmp_path / 'manual' / 'images').mkdir(parents=True)
  with pytest.raises(manual_files.ManualFileError,
                     match='missing file .*mpii_human_pose_v1_u12_1.mat'):
    mpii.build(tmp_path / 'manual', tmp_path / 'tfds')


def test_wrong_structures_name_the_file_and_field(tmp_path):
  path = tmp_path / 'mpii_human_pose_v1_u12_1.mat'
  scipy.io.savemat(path, {'annolist': 1})
  with pytest.raises(manual_files.ManualFileError, match="RELEASE"):
    mpii.read_release(path)
  bad = fixtures.mpii_rect([fixtures.mpii_point(16, 1.0, 1.0, 1)])
  release = fixtures.mpii_release([('a.jpg', [bad], True)])
  scipy.io.savemat(path, {'RELEASE': release})
  with pytest.raises(manual_files.ManualFileError,
                     match=r'annolist\(1\).annorect\(1\).annopoints.point\(1\)'
                     r'.id should be a joint id in \[0, 15\], got 16'):
    mpii.read_release(path)


def test_validation_person_must_exist(tmp_path, monkeypatch):
  _write(tmp_path / 'manual')
  monkeypatch.setattr(valid_split, 'load', lambda: np.array([[2, 0]]))
  with pytest.raises(manual_files.ManualFileError,
                     match='RELEASE_img_index=3, RELEASE_person_index=1'):
    mpii.build(tmp_path / 'manual', tmp_path / 'tfds')


def test_validation_person_needs_a_head_box(tmp_path, fixture_validation):
  """PCKh's head size comes from it: no validation person goes without."""
  del fixture_validation
  images = fixtures.mpii_images()
  for name in ('x1', 'y1', 'x2', 'y2'):  # empty, as in a Matlab struct array
    images[0][1][1][name] = np.zeros((0, 0))
  _write(tmp_path / 'manual', images)
  with pytest.raises(manual_files.ManualFileError,
                     match=r'RELEASE_img_index=1, RELEASE_person_index=2 .*'
                     r'objpos, scale and a head box \(PCKh\)'):
    mpii.build(tmp_path / 'manual', tmp_path / 'tfds')


def test_every_validation_record_has_its_head_box(built):
  record = built.as_data_source('validation')[0]
  np.testing.assert_allclose(record['head_box'], [9, 3, 13, 8])


def test_missing_image_names_it(tmp_path, fixture_validation):
  del fixture_validation
  _write(tmp_path / 'manual')
  (tmp_path / 'manual' / 'images' / 'b.jpg').unlink()
  with pytest.raises(manual_files.ManualFileError,
                     match=r'images/b.jpg: expected the MPII image annolist\(2\)'):
    mpii.build(tmp_path / 'manual', tmp_path / 'tfds')


def test_packaged_validation_split():
  pairs = valid_split.load()
  assert pairs.shape == (2958, 2) and pairs.min() == 0
  assert len(set(map(tuple, pairs.tolist()))) == 2958


@needs_specimens
def test_validation_split_matches_specimen(tmp_path):
  specimen = MPII_SPECIMENS / 'valid_annolist.mat'
  np.testing.assert_array_equal(valid_split.read_valid_annolist(specimen) - 1,
                                valid_split.load())
  valid_split.write(specimen, tmp_path / 'split.json')
  np.testing.assert_array_equal(valid_split.load(tmp_path / 'split.json'),
                                valid_split.load())


@pytest.fixture(scope='module')
def specimen_persons():
  if not MPII_SPECIMENS.is_dir():
    pytest.skip('no ../shared/specimens')
  path = str(MPII_SPECIMENS / 'valid_annolist.mat')
  annolist = manual_files.load_mat(path, ('annolist',), 'annolist')['annolist']
  return mpii.parse_annolist(annolist, path)


def test_specimen_annolist_parses(specimen_persons):
  assert len(specimen_persons) == 2958
  assert all(len(p) == 1 and p[0].annotated and p[0].locatable
             for p in specimen_persons)
  names = (MPII_SPECIMENS / 'valid_images.txt').read_text().split()
  assert len(names) == 2958


def test_specimen_agrees_with_gt_valid(specimen_persons):
  gt = scipy.io.loadmat(MPII_SPECIMENS / 'gt_valid.mat')
  joints = np.stack([p[0].joints for p in specimen_persons], axis=-1)
  visible = np.stack([p[0].visible for p in specimen_persons], axis=-1)
  np.testing.assert_array_equal(visible, gt['jnt_missing'] == 0)
  gt_joints = gt['pos_gt_src'] - 1
  differ = (np.abs(gt_joints - joints).max(axis=1) > 1e-3) & visible
  # gt_valid.mat zeroes a coordinate of 13 labelled joints; all others agree.
  assert differ.sum() == 13
  assert (gt['pos_gt_src'].min(axis=1)[differ] == 0).all()
  boxes = np.stack([p[0].head_box.reshape(2, 2) for p in specimen_persons], -1)
  np.testing.assert_allclose(boxes, gt['headboxes_src'] - 1, atol=1e-3)


def test_read_validation_persons_from_valid_annolist():
  if not MPII_SPECIMENS.is_dir():
    pytest.skip('no ../shared/specimens')
  persons = mpii.read_validation_persons(MPII_SPECIMENS / 'valid_annolist.mat')
  assert len(persons) == 2958
  assert all(p.has_head_box and p.annotated for p in persons)


def test_specimen_agrees_with_test_json_and_images_decode(specimen_persons):
  people = json.loads((MPII_SPECIMENS / 'images' / 'test_mpii.json').read_text())
  names = (MPII_SPECIMENS / 'valid_images.txt').read_text().split()
  feature = mpii.MpiiPose(data_dir='/nonexistent').info.features['image']
  for k, person in enumerate(people):
    parsed = specimen_persons[k][0]
    labelled = np.array(person['joints_vis'], bool)
    assert person['image'] == names[k]
    np.testing.assert_array_equal(parsed.visible, labelled)
    np.testing.assert_allclose(parsed.joints[labelled],
                               np.array(person['joints'])[labelled] - 1,
                               atol=1e-4)
    np.testing.assert_allclose(parsed.center, np.array(person['center']) - 1)
    np.testing.assert_allclose(parsed.scale, person['scale'], rtol=1e-6)
    image = feature.decode_example_np(manual_files.read_rgb_image(
        MPII_SPECIMENS / 'images' / person['image'], 'an MPII image'))
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def _release(edit_images=None, edit_release=None):
  """The fixture's RELEASE struct, its images (name, rects, train) or the
  struct itself edited first."""
  images = fixtures.mpii_images()
  if edit_images:
    edit_images(images)
  release = fixtures.mpii_release(images)
  if edit_release:
    edit_release(release)
  return release


def _drop_from_rects(name):
  """Drops field ``name`` from the rects of image 1 (a struct array)."""
  def edit(images):
    for rect in images[0][1]:
      rect.pop(name)
  return edit


def _drop_from_points(name):
  """Drops field ``name`` from the points of image 1's first rect."""
  def edit(images):
    rect = images[0][1][0]
    rect['annopoints'] = {'point': fixtures.struct_array([
        {k: v for k, v in point.items() if k != name}
        for point in fixtures.full_mpii_points()])}
  return edit


def _rename_image_name(release):
  release['annolist'][0, 1]['image'] = {'filename': 'b.jpg'}


@pytest.mark.parametrize('release,where,name', [
    (_release(edit_release=lambda r: r.pop('annolist')), 'RELEASE',
     'annolist'),
    (_release(edit_release=lambda r: r.pop('img_train')), 'RELEASE',
     'img_train'),
    (_release(edit_release=_rename_image_name), r'annolist\(2\).image', 'name'),
    (_release(_drop_from_points('x')),
     r'annolist\(1\).annorect\(1\).annopoints.point\(1\)', 'x'),
    (_release(_drop_from_points('id')),
     r'annolist\(1\).annorect\(1\).annopoints.point\(1\)', 'id'),
], ids=['annolist', 'img_train', 'image.name', 'point.x', 'point.id'])
def test_missing_fields_are_named(tmp_path, release, where, name):
  path = tmp_path / 'mpii_human_pose_v1_u12_1.mat'
  scipy.io.savemat(path, {'RELEASE': release})
  with pytest.raises(manual_files.ManualFileError,
                     match=rf"u12_1.mat: {where} has no field '{name}'"):
    mpii.read_release(path)


def test_a_partial_head_box_names_the_missing_fields(tmp_path):
  path = tmp_path / 'mpii_human_pose_v1_u12_1.mat'
  scipy.io.savemat(path, {'RELEASE': _release(_drop_from_rects('y2'))})
  with pytest.raises(manual_files.ManualFileError,
                     match=r"annolist\(1\).annorect\(1\) has the head box "
                     r"field\(s\) \['x1', 'y1', 'x2'\] but not \['y2'\]"):
    mpii.read_release(path)


def test_optional_fields_may_be_missing(tmp_path):
  """objpos, scale, annopoints and the head box are absent from many real
  annorects (test images); single_person and act are not read at all."""
  path = tmp_path / 'mpii_human_pose_v1_u12_1.mat'
  scipy.io.savemat(path, {'RELEASE': _release(_drop_from_rects('objpos'))})
  assert mpii.read_release(path).persons[0][0].center is None
