"""Tests of the FLIC builder on fixtures in the original format and on the specimens."""

import numpy as np
import pytest
import scipy.io

from cascade_jax import joint_sets
from cascade_jax.data import manual_files
from cascade_jax.data import pipeline
from cascade_jax.data.flic import flic
from tests.data import fixtures

FLIC_SPECIMENS = fixtures.SPECIMENS / 'flic'
needs_specimens = pytest.mark.skipif(not FLIC_SPECIMENS.is_dir(),
                                     reason='no ../shared/specimens')


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  root = tmp_path_factory.mktemp('flic')
  entries = fixtures.write_flic_dataset(root / 'manual')
  fixtures.write_flic_full(root / 'manual')
  return entries, root


def test_builds_train_and_test_in_order(built):
  entries, root = built
  builder = flic.build(root / 'manual', root / 'tfds', 'flic')
  train, test = builder.as_data_source('train'), builder.as_data_source('test')
  assert (len(train), len(test)) == (3, 2)
  record = test[1]
  expected = np.asarray(entries[4]['coords'])[:, fixtures.FLIC_COLUMNS].T - 1
  np.testing.assert_allclose(record['joints'], expected, rtol=1e-6)
  assert record['visible'].all() and record['backward_facing']
  assert record['image_name'] == b'movie-00000005.jpg'  # Text is bytes.
  assert record['example_index'] == 4
  np.testing.assert_allclose(record['torso_box'], [7, 5, 19, 17])
  np.testing.assert_allclose(record['torso_center'], [13, 11])
  assert record['person_scale'] == 24
  assert not train[0]['backward_facing']


def test_unlabelled_joint_is_zero_and_invisible(built):
  _, root = built
  record = flic.build(root / 'manual', root / 'tfds').as_data_source('test')[0]
  nose = joint_sets.FLIC.index('nose')
  assert not record['visible'][nose] and record['visible'].sum() == 10
  np.testing.assert_array_equal(record['joints'][nose], [0, 0])


@pytest.mark.parametrize('split,index,shape', [('test', 0, (24, 32, 3)),
                                               ('train', 2, (30, 40, 3))])
def test_gray_and_cmyk_jpegs_decode_to_rgb(built, split, index, shape):
  _, root = built
  image = flic.build(root / 'manual', root / 'tfds').as_data_source(
      split)[index]['image']
  assert image.dtype == np.uint8 and image.shape == shape


def test_flic_plus_trains_on_full_indices_and_tests_on_flic(built):
  _, root = built
  builder = flic.build(root / 'manual', root / 'tfds', 'flic_plus')
  train = builder.as_data_source('train')
  assert [train[i]['image_name'].decode() for i in range(len(train))] == [
      'full-00000000.jpg', 'full-00000002.jpg', 'full-00000003.jpg']
  assert len(builder.as_data_source('test')) == 2


def test_records_feed_the_pipeline(built):
  _, root = built
  record = flic.build(root / 'manual', root / 'tfds').as_data_source('test')[1]
  spec = pipeline.CropSpec(
      input_size=(32, 24), stride=8, center_key='torso_center', box_scale=4 / 3,
      sigma=1.5,
      flip_permutation=tuple(joint_sets.FLIC.flip_permutation.tolist()))
  example = pipeline.prepare_example(record, spec, np.random.default_rng(0))
  assert example['image'].shape == (24, 32, 3)
  assert example['targets'].shape == (3, 4, 11)


def test_missing_examples_mat_names_the_file(tmp_path):
  with pytest.raises(AssertionError, match='FLIC/examples.mat'):
    flic.build(tmp_path / 'nowhere', tmp_path / 'tfds')
  (tmp_path / 'manual' / 'FLIC').mkdir(parents=True)
  with pytest.raises(manual_files.ManualFileError,
                     match='missing file .*FLIC/examples.mat'):
    flic.build(tmp_path / 'manual', tmp_path / 'tfds')


def test_missing_and_unreadable_images_name_the_file(tmp_path):
  fixtures.write_flic_dataset(tmp_path)
  (tmp_path / 'FLIC' / 'images' / 'movie-00000002.jpg').unlink()
  with pytest.raises(manual_files.ManualFileError,
                     match=r'movie-00000002.jpg: expected the FLIC frame'):
    flic.build(tmp_path, tmp_path / 'tfds')
  (tmp_path / 'FLIC' / 'images' / 'movie-00000002.jpg').write_bytes(b'nope')
  with pytest.raises(manual_files.ManualFileError,
                     match='cannot read .*movie-00000002.jpg as an image'):
    flic.build(tmp_path, tmp_path / 'tfds2')


def test_wrong_structure_names_the_field(tmp_path):
  entry = fixtures.flic_entry(fixtures.flic_joints(0), 'a.jpg', train=True)
  entry['coords'] = entry['coords'][:, :14]
  scipy.io.savemat(tmp_path / 'examples.mat',
                   {'examples': fixtures.struct_array([entry])})
  with pytest.raises(manual_files.ManualFileError,
                     match=r'examples.mat: examples\(1\).coords should be 2x29'):
    flic.read_examples(tmp_path / 'examples.mat')
  scipy.io.savemat(tmp_path / 'examples.mat', {'other': 1})
  with pytest.raises(manual_files.ManualFileError, match='missing.*examples'):
    flic.read_examples(tmp_path / 'examples.mat')


def test_plus_indices_out_of_range(tmp_path):
  fixtures.write_flic_full(tmp_path, indices=(1, 5))
  with pytest.raises(manual_files.ManualFileError,
                     match=r'tr_plus_indices.mat: .*\[1, 4\]'):
    flic.read_plus_indices(tmp_path / 'FLIC-full' / 'tr_plus_indices.mat', 4)


@needs_specimens
def test_specimen_counts_and_backward_labels():
  examples = flic.read_examples(FLIC_SPECIMENS / 'examples.mat')
  assert len(examples) == 5003
  assert sum(e.is_train for e in examples) == 3987
  assert sum(e.is_test for e in examples) == 1016
  assert sum(e.backward_facing for e in examples) == 247
  assert sum(e.backward_facing and e.is_test for e in examples) == 48
  assert all(e.visible.all() for e in examples)
  plus = flic.read_plus_indices(FLIC_SPECIMENS / 'tr_plus_indices.mat', 20928)
  assert plus.shape == (17380,) and plus.min() == 0


@needs_specimens
def test_specimen_builds_end_to_end_on_its_two_frames(tmp_path):
  """examples.mat restricted (in its own struct layout) to the two frames."""
  raw = scipy.io.loadmat(FLIC_SPECIMENS / 'examples.mat')['examples']
  names = sorted(p.name for p in (FLIC_SPECIMENS / 'images').glob('*.jpg'))
  keep = [i for i in range(raw.shape[1]) if raw[0, i]['filepath'][0] in names]
  folder = tmp_path / 'manual' / 'FLIC'
  (folder / 'images').mkdir(parents=True)
  scipy.io.savemat(folder / 'examples.mat', {'examples': raw[:, keep]})
  for name in names:
    (folder / 'images' / name).write_bytes(
        (FLIC_SPECIMENS / 'images' / name).read_bytes())
  builder = flic.build(tmp_path / 'manual', tmp_path / 'tfds')
  records = [builder.as_data_source(s)[0] for s in ('train', 'test')]
  assert [r['image_name'].decode() for r in records] == [
      '12-oclock-high-special-edition-00006381.jpg',
      'princess-diaries-2-00152201.jpg']
  for record in records:
    assert record['image'].shape == (480, 720, 3)
    assert record['person_scale'] == 480


@pytest.mark.parametrize('name', ['coords', 'torsobox', 'imgdims', 'filepath',
                                  'istrain', 'istest'])
def test_missing_field_names_the_field_and_file(tmp_path, name):
  entries = [fixtures.flic_entry(fixtures.flic_joints(k), f'{k}.jpg',
                                 train=True) for k in range(2)]
  for entry in entries:
    del entry[name]
  scipy.io.savemat(tmp_path / 'examples.mat',
                   {'examples': fixtures.struct_array(entries)})
  with pytest.raises(manual_files.ManualFileError,
                     match=rf"examples.mat: examples\(1\) has no field "
                     rf"'{name}'; fields: \["):
    flic.read_examples(tmp_path / 'examples.mat')
