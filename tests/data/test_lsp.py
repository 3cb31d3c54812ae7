"""Tests of the LSP builder on fixtures in the original format and on the specimens."""

import ml_collections
import numpy as np
import pytest
import scipy.io

from cascade_jax.data import datasets
from cascade_jax.data import manual_files
from cascade_jax.data import pipeline
from cascade_jax.data.lsp import lsp
from tests.data import fixtures

LSP_SPECIMENS = fixtures.SPECIMENS / 'lsp'
needs_specimens = pytest.mark.skipif(not LSP_SPECIMENS.is_dir(),
                                     reason='no ../shared/specimens')


@pytest.fixture(scope='module')
def manual_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('lsp')
  fixtures.write_lsp(root / 'lsp_dataset', fixtures.lsp_joints(2000), 4)
  fixtures.write_lsp(root / 'lspet_dataset',
                     fixtures.lsp_joints(3, extended=True, seed=1), 5)
  return root


def test_third_row_means_occluded_in_lsp_and_visible_in_lspet(tmp_path):
  raw = fixtures.lsp_joints(4)
  fixtures.write_lsp(tmp_path / 'a', raw, 4)
  labels = lsp.read_joints(tmp_path / 'a' / 'joints.mat')
  np.testing.assert_array_equal(labels.occluded, raw[2].T == 1)
  np.testing.assert_allclose(labels.joints, raw[:2].transpose(2, 1, 0) - 1)
  raw = fixtures.lsp_joints(4, extended=True)
  fixtures.write_lsp(tmp_path / 'b', raw, 5)
  labels = lsp.read_joints(tmp_path / 'b' / 'joints.mat', extended=True)
  np.testing.assert_array_equal(labels.occluded, raw[:, 2].T == 0)
  np.testing.assert_allclose(labels.joints, raw[:, :2].transpose(2, 0, 1) - 1)
  assert labels.visible.all()


def test_person_box_from_labelled_joints():
  joints = np.array([[10.0, 20.0], [30.0, 100.0], [500.0, 500.0]])
  center, scale = lsp.person_box(joints, np.array([True, True, False]))
  np.testing.assert_allclose(center, [20, 60])
  np.testing.assert_allclose(scale, lsp.PERSON_SCALE_PER_EXTENT * 80)


def test_builds_lsp_and_lsp_extended(manual_dir, tmp_path):
  builder = lsp.build(manual_dir, tmp_path, 'lsp')
  train, test = builder.as_data_source('train'), builder.as_data_source('test')
  assert (len(train), len(test)) == (1000, 1000)
  record = test[0]
  assert record['image_name'] == b'im1001.jpg' and record['example_index'] == 1000
  assert record['image'].shape == (16, 12, 3)
  labels = lsp.read_joints(manual_dir / 'lsp_dataset' / 'joints.mat')
  np.testing.assert_allclose(record['joints'], labels.joints[1000])
  np.testing.assert_array_equal(record['occluded'], labels.occluded[1000])
  center, scale = lsp.person_box(labels.joints[1000], labels.visible[1000])
  np.testing.assert_allclose(record['person_center'], center)
  np.testing.assert_allclose(record['person_scale'], scale)
  extended = lsp.build(manual_dir, tmp_path, 'lsp_extended')
  train = extended.as_data_source('train')
  assert len(train) == 1003 and train[1002]['image_name'] == b'im00003.jpg'
  assert len(extended.as_data_source('test')) == 1000


def test_load_split_selects_normalised_or_original_scale(manual_dir, tmp_path):
  config = ml_collections.ConfigDict({
      'name': 'lsp', 'builder_config': 'lsp', 'data_dir': str(tmp_path),
      'manual_dir': str(manual_dir), 'input_size': (256, 256),
      'box_scale': 1.25})
  source, joint_set = datasets.load_split(config, 'test')
  assert joint_set.name == 'lsp'
  normalised = source[3]['person_scale']
  config.scale_normalised = False
  source, _ = datasets.load_split(config, 'test')
  assert len(source) == 1000
  record = source[3]
  assert record['person_scale'] == pytest.approx(256 / 1.25)
  assert record['person_scale'] != normalised
  # Images stay JPEG bytes for the pipeline's reduced-scale decode.
  assert isinstance(record['image'], bytes)
  assert pipeline.decode_image(record['image'], 1).shape == (16, 12, 3)


def test_wrong_layout_and_missing_image_name_the_file(manual_dir, tmp_path):
  with pytest.raises(manual_files.ManualFileError,
                     match=r'lspet_dataset/joints.mat: "joints" should be '
                     r'3 x 14 x N \(LSP\), got \(14, 3, 3\)'):
    lsp.read_joints(manual_dir / 'lspet_dataset' / 'joints.mat')
  fixtures.write_lsp(tmp_path / 'manual' / 'lsp_dataset',
                     fixtures.lsp_joints(2000), 4)
  (tmp_path / 'manual' / 'lsp_dataset' / 'images' / 'im0007.jpg').unlink()
  with pytest.raises(manual_files.ManualFileError,
                     match='missing file .*im0007.jpg: expected the image of '
                     'example 7'):
    lsp.build(tmp_path / 'manual', tmp_path / 'tfds')


@needs_specimens
def test_specimen_joints_and_images():
  labels = lsp.read_joints(LSP_SPECIMENS / 'joints.mat')
  assert len(labels) == 2000 and labels.visible.all()
  # Row 3 is 1 for occluded joints: a minority, as in the images.
  assert 0 < labels.occluded.mean() < 0.2
  feature = lsp.LspPose(data_dir='/nonexistent').info.features['image']
  for path in sorted((LSP_SPECIMENS / 'images').glob('im*.jpg')):
    index = int(path.stem[2:]) - 1
    assert index >= lsp.NUM_TRAIN  # the specimens are test images
    image = feature.decode_example_np(
        manual_files.read_rgb_image(path, 'an LSP image'))
    height, width, channels = image.shape
    assert channels == 3
    joints = labels.joints[index]
    assert (joints > -20).all() and (joints[:, 0] < width + 20).all()
    assert (joints[:, 1] < height + 20).all()


def test_missing_joints_variable_names_it(tmp_path):
  scipy.io.savemat(tmp_path / 'joints.mat', {'joint': fixtures.lsp_joints(2)})
  with pytest.raises(manual_files.ManualFileError,
                     match=r"joints.mat: expected .* variable\(s\) "
                     r"\['joints'\]; missing \['joints'\]"):
    lsp.read_joints(tmp_path / 'joints.mat')
