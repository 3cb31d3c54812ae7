"""Tests for cascade_jax.eval.prediction_files on fixtures written here."""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from cascade_jax.data import manual_files
from cascade_jax.data.mpii import valid_split
from cascade_jax.eval import official
from cascade_jax.eval import prediction_files as pf
from tests.data import fixtures

SPECIMENS = Path(__file__).parents[2].parent / 'shared' / 'specimens'


def _specimen(relative):
  path = SPECIMENS / relative
  if not path.exists():
    pytest.skip(f'specimen {path} absent')
  return str(path)


def _gt(num=3, joints=16):
  coords = np.arange(num * joints * 2, dtype=np.float64).reshape(num, joints, 2)
  return pf.GroundTruth(dataset='mpii', coords=coords,
                        visible=np.ones((num, joints), dtype=bool))


@pytest.mark.parametrize('layout,axes', [('NJ2', (0, 1, 2)),
                                         ('J2N', (1, 2, 0)),
                                         ('2JN', (2, 1, 0))])
def test_arrange_layouts(layout, axes):
  pred = np.random.default_rng(0).normal(size=(5, 16, 2))
  stored = pred.transpose(axes)
  got = pf.arrange_predictions(stored, 5, 16)
  np.testing.assert_array_equal(got, pred)
  np.testing.assert_array_equal(pf.arrange_predictions(stored, 5, 16, layout),
                                pred)


def test_arrange_drops_score_column():
  pred = np.random.default_rng(0).normal(size=(5, 16, 3))
  np.testing.assert_array_equal(pf.arrange_predictions(pred, 5, 16),
                                pred[..., :2])


def test_arrange_ambiguous_and_mismatched():
  # N = 2, J = 5: 2 x 5 x 2 is both N x J x 2 and 2 x J x N.
  with pytest.raises(ValueError, match=r"fits layouts \['NJ2', '2JN'\]"):
    pf.arrange_predictions(np.zeros((2, 5, 2)), 2, 5)
  assert pf.arrange_predictions(np.zeros((2, 5, 2)), 2, 5, '2JN').shape == (
      2, 5, 2)
  with pytest.raises(ValueError, match='3 x 16 x 2'):
    pf.arrange_predictions(np.zeros((4, 16, 2)), 3, 16, name='x.npy')


def test_load_mat_only_variable_and_key(tmp_path):
  gt = _gt()
  pred = gt.coords + 0.5
  path = str(tmp_path / 'p.mat')
  scipy.io.savemat(path, {'pos_pred_src': (pred + 1).transpose(1, 2, 0),
                          'name': 'method'})
  np.testing.assert_allclose(pf.load_predictions(path, gt, index_base=1),
                             pred)
  scipy.io.savemat(path, {'a': pred, 'b': pred})
  with pytest.raises(ValueError, match='--predictions_key'):
    pf.load_predictions(path, gt, index_base=0)
  np.testing.assert_allclose(
      pf.load_predictions(path, gt, key='b', index_base=0), pred)
  with pytest.raises(KeyError, match="no variable 'c'"):
    pf.load_predictions(path, gt, key='c', index_base=0)


def test_undeclared_index_base_must_be_named(tmp_path):
  """A file that does not declare its pixel convention is not guessed at."""
  gt = _gt()
  path = str(tmp_path / 'p.npy')
  np.save(path, gt.coords + 1)
  with pytest.raises(ValueError, match=r'p.npy does not declare .*'
                     r'--index_base=0 or 1'):
    pf.load_predictions(path, gt)
  np.testing.assert_array_equal(pf.load_predictions(path, gt, index_base=1),
                                gt.coords)
  np.testing.assert_array_equal(pf.load_predictions(path, gt, index_base=0),
                                gt.coords + 1)
  with pytest.raises(ValueError, match='index_base must be 0 or 1'):
    pf.load_predictions(path, gt, index_base=2)


def test_declared_index_base_wins_and_must_agree(tmp_path):
  gt = _gt()
  official_path = str(tmp_path / 'official.mat')
  pf.save_official_predictions(official_path, gt.coords, 'mpii')
  assert scipy.io.loadmat(official_path)['index_base'] == 1
  np.testing.assert_array_equal(pf.load_predictions(official_path, gt),
                                gt.coords)
  with pytest.raises(ValueError, match='declares index_base = 1, but 0 was '
                     'given'):
    pf.load_predictions(official_path, gt, index_base=0)
  path = str(tmp_path / 'bad.json')
  with open(path, 'w') as f:
    json.dump({'preds': gt.coords.tolist(), 'index_base': 3}, f)
  with pytest.raises(ValueError, match='bad.json: index_base must be 0 or 1'):
    pf.load_predictions(path, gt)


def test_load_npy_json_and_writers(tmp_path):
  gt = _gt()
  pred = gt.coords + 0.25
  pred[1, 2] = np.nan
  for name in ('p.json', 'p.mat'):
    path = str(tmp_path / name)
    pf.save_predictions(path, pred)  # 0-based, declared so
    np.testing.assert_array_equal(pf.load_predictions(path, gt), pred)
  with pytest.raises(ValueError, match='cannot declare its index base'):
    pf.save_predictions(str(tmp_path / 'p.npy'), pred)
  path = str(tmp_path / 'list.json')  # a bare J x 2 x N list, no NaN
  with open(path, 'w') as f:
    json.dump(gt.coords.transpose(1, 2, 0).tolist(), f)
  np.testing.assert_array_equal(pf.load_predictions(path, gt, index_base=0),
                                gt.coords)


def test_load_h5(tmp_path):
  h5py = pytest.importorskip('h5py')
  gt = _gt()
  path = str(tmp_path / 'p.h5')
  with h5py.File(path, 'w') as f:
    f['preds'] = gt.coords + 1
    f.attrs['index_base'] = 1
  np.testing.assert_array_equal(pf.load_predictions(path, gt), gt.coords)


def test_unsupported_and_missing_files(tmp_path):
  gt = _gt()
  with pytest.raises(FileNotFoundError, match='nope.npy'):
    pf.load_predictions(str(tmp_path / 'nope.npy'), gt)
  path = tmp_path / 'p.txt'
  path.write_text('1 2')
  with pytest.raises(ValueError, match=r"\.txt"):
    pf.load_predictions(str(path), gt)


def test_official_mpii_writer_is_one_based_pos_pred_src(tmp_path):
  pred = np.random.default_rng(1).uniform(0, 100, size=(4, 16, 2))
  path = str(tmp_path / 'pred.mat')
  assert pf.save_official_predictions(path, pred, 'mpii') == 'pos_pred_src'
  stored = scipy.io.loadmat(path)['pos_pred_src']
  assert stored.shape == (16, 2, 4)
  np.testing.assert_allclose(stored[:, :, 2], pred[2] + 1)
  with pytest.raises(ValueError, match=r'\[N, 14, 2\]'):
    pf.save_official_predictions(path, pred, 'lsp')


def test_official_lsp_writer_is_one_based_2jn(tmp_path):
  pred = np.random.default_rng(2).uniform(0, 100, size=(3, 14, 2))
  path = str(tmp_path / 'pred.mat')
  assert pf.save_official_predictions(path, pred, 'lsp') == 'pred'
  stored = scipy.io.loadmat(path)['pred']
  assert stored.shape == (2, 14, 3)
  np.testing.assert_allclose(stored[:, :, 1].T, pred[1] + 1)


def test_gt_valid_roundtrip_and_missing(tmp_path):
  rng = np.random.default_rng(2)
  coords = rng.uniform(0, 100, size=(3, 16, 2))
  visible = np.ones((3, 16), dtype=bool)
  visible[1, 4] = False
  boxes = rng.uniform(0, 100, size=(3, 2, 2))
  gt = pf.GroundTruth('mpii', coords, visible, head_boxes=boxes)
  path = str(tmp_path / 'gt.mat')
  pf.save_ground_truth_mat(path, gt)
  stored = scipy.io.loadmat(path)
  np.testing.assert_array_equal(stored['pos_gt_src'][4, :, 1], [0, 0])
  np.testing.assert_allclose(stored['headboxes_src'][:, :, 0], boxes[0] + 1)
  back = pf.load_ground_truth(path, 'mpii')
  np.testing.assert_array_equal(back.visible, visible)
  np.testing.assert_allclose(back.coords[visible], coords[visible])
  np.testing.assert_allclose(back.head_boxes, boxes)


def test_ground_truth_errors(tmp_path):
  path = str(tmp_path / 'release.mat')
  scipy.io.savemat(path, {'RELEASE': np.zeros(3)})
  with pytest.raises(manual_files.ManualFileError,
                     match="RELEASE should be a struct with field "
                     "'annolist'"):
    pf.load_ground_truth(path, 'mpii')
  path = str(tmp_path / 'flic_as_mpii.mat')
  scipy.io.savemat(path, {'pos_gt_src': np.zeros((11, 2, 3))})
  with pytest.raises(ValueError, match='11 joints but mpii has 16'):
    pf.load_ground_truth(path, 'mpii')
  scipy.io.savemat(path, {'pos_gt_src': np.zeros((16, 2, 3))})
  with pytest.raises(ValueError, match='headboxes_src'):
    pf.load_ground_truth(path, 'mpii')
  scipy.io.savemat(path, {'other': np.zeros(3)})
  with pytest.raises(ValueError, match='LSP joints.mat'):
    pf.load_ground_truth(path, 'lsp')


def test_flic_examples_fixture(tmp_path):
  coords = np.full((4, 2, 29), np.nan)
  for i in range(4):
    coords[i][:, list(pf.FLIC_COORD_COLUMNS)] = i + np.arange(22).reshape(2, 11)
  examples = np.zeros((1, 4), dtype=[('coords', 'O'), ('istest', 'O')])
  for i in range(4):
    examples[0, i] = (coords[i], float(i % 2))
  path = str(tmp_path / 'examples.mat')
  scipy.io.savemat(path, {'examples': examples})
  gt = pf.load_ground_truth(path, 'flic')
  assert gt.coords.shape == (2, 11, 2) and gt.visible.all()
  np.testing.assert_array_equal(gt.coords[0], coords[1][:, list(
      pf.FLIC_COORD_COLUMNS)].T - 1)  # 1-based Matlab -> 0-based


def test_lsp_joints_fixture(tmp_path):
  joints = np.random.default_rng(3).uniform(0, 100, size=(3, 14, 2000))
  joints[2] = joints[2] > 50
  path = str(tmp_path / 'joints.mat')
  scipy.io.savemat(path, {'joints': joints})
  gt = pf.load_ground_truth(path, 'lsp')
  assert gt.coords.shape == (1000, 14, 2) and gt.visible.all()
  np.testing.assert_array_equal(gt.coords[0], joints[:2, :, 1000].T - 1)
  np.testing.assert_array_equal(gt.occluded[0], joints[2, :, 1000] > 0)


@pytest.mark.parametrize('relative,dataset,num', [
    ('flic/examples.mat', 'flic', 1016), ('lsp/joints.mat', 'lsp', 1000),
    ('mpii/gt_valid.mat', 'mpii', 2958)])
def test_specimens_load(relative, dataset, num):
  path = SPECIMENS / relative
  if not path.exists():
    pytest.skip(f'specimen {path} absent')
  gt = pf.load_ground_truth(str(path), dataset)
  assert gt.num_examples == num
  assert np.isfinite(gt.coords[gt.visible]).all()


def test_mpii_release_ground_truth(tmp_path, monkeypatch):
  """The RELEASE file: its validation persons' own coordinates, 0-based."""
  monkeypatch.setattr(valid_split, 'load', lambda: np.array([[0, 1]]))
  path = str(tmp_path / 'mpii_human_pose_v1_u12_1.mat')
  scipy.io.savemat(path, {'RELEASE': fixtures.mpii_release(
      fixtures.mpii_images())})
  gt = pf.load_ground_truth(path, 'mpii')
  assert gt.num_examples == 1
  # Person 2 of image 1: the first 12 points of the fixture, x = 5 + id + 3,
  # y = 20 - id (1-based); head box (10, 4)-(14, 9).
  assert np.flatnonzero(gt.visible[0]).tolist() == [0, 1, 2, 3, 4, 5, 6, 7,
                                                    8, 9, 10, 15]
  np.testing.assert_allclose(gt.coords[0, 15], [22.0, 4.0])
  np.testing.assert_allclose(gt.coords[0, 0], [7.0, 19.0])
  np.testing.assert_allclose(gt.head_boxes[0], [[9.0, 3.0], [13.0, 8.0]])


def test_project_files_scored_against_gt_valid_are_unshifted(tmp_path):
  """Item 6: 0-based files (save_predictions) and 1-based ones
  (save_official_predictions) of the ground truth itself land on it
  exactly: at r = 0 every labelled joint is correct (a 1 px shift: none)."""
  gt = pf.load_ground_truth(_specimen('mpii/gt_valid.mat'), 'mpii')
  for name in ('ours.json', 'ours.mat', 'official.mat'):
    path = str(tmp_path / name)
    if name.startswith('official'):
      pf.save_official_predictions(path, gt.coords, 'mpii')
    else:
      pf.save_predictions(path, gt.coords)
    pred = pf.load_predictions(path, gt)
    np.testing.assert_array_equal(pred[gt.visible], gt.coords[gt.visible])
    s = official.mpii_pckh(pred, gt.coords, gt.visible, gt.head_boxes,
                           threshold=0.0)
    assert s.columns['Total'] == 1.0, name
  shifted = official.mpii_pckh(gt.coords - 1, gt.coords, gt.visible,
                               gt.head_boxes, threshold=0.0)
  assert shifted.columns['Total'] == 0.0


def test_mpii_annolist_specimen_differs_from_gt_valid_in_13_joints():
  """Item 7: valid_annolist.mat's own coordinates, where gt_valid.mat has
  zeroed a coordinate of 13 labelled joints."""
  annolist = pf.load_ground_truth(_specimen('mpii/valid_annolist.mat'),
                                  'mpii')
  gt_valid = pf.load_ground_truth(_specimen('mpii/gt_valid.mat'), 'mpii')
  assert annolist.num_examples == 2958
  np.testing.assert_array_equal(annolist.visible, gt_valid.visible)
  np.testing.assert_allclose(annolist.head_boxes, gt_valid.head_boxes,
                             atol=1e-3)
  differ = (np.abs(annolist.coords - gt_valid.coords).max(-1) > 1e-3) & (
      annolist.visible)
  assert differ.sum() == 13
  assert (gt_valid.coords[differ] == -1).any(-1).all()  # 0 in the 1-based file
  # The annolist's coordinates as predictions: exact against the annolist;
  # against gt_valid.mat at r = 1e-5 (float32 storage: < 1e-4 px) the
  # zeroed joints among the 14 miss.
  scored = [j for j in range(16) if j not in (6, 7)]  # pelvis, thorax
  misses = differ[:, scored].sum()
  labelled = annolist.visible[:, scored].sum()
  exact = official.mpii_pckh(annolist.coords, annolist.coords,
                             annolist.visible, annolist.head_boxes,
                             threshold=0.0)
  assert exact.columns['Total'] == 1.0
  against_gt_valid = official.mpii_pckh(
      annolist.coords, gt_valid.coords, gt_valid.visible, gt_valid.head_boxes,
      threshold=1e-5)
  assert against_gt_valid.columns['Total'] == pytest.approx(
      (labelled - misses) / labelled)
  assert misses > 0
