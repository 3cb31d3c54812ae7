"""Tests for cascade_jax.eval.prediction_files on fixtures written here."""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from cascade_jax.eval import prediction_files as pf

SPECIMENS = Path(__file__).parents[2].parent / 'shared' / 'specimens'


def _gt(num=3, joints=16, one_based=True):
  coords = np.arange(num * joints * 2, dtype=np.float64).reshape(num, joints, 2)
  return pf.GroundTruth(dataset='mpii', coords=coords,
                        visible=np.ones((num, joints), dtype=bool),
                        one_based=one_based)


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
  np.testing.assert_allclose(pf.load_predictions(path, gt), pred)
  scipy.io.savemat(path, {'a': pred, 'b': pred})
  with pytest.raises(ValueError, match='--predictions_key'):
    pf.load_predictions(path, gt)
  np.testing.assert_allclose(pf.load_predictions(path, gt, key='b'), pred - 1)
  with pytest.raises(KeyError, match="no variable 'c'"):
    pf.load_predictions(path, gt, key='c')


def test_load_npy_json_and_writers(tmp_path):
  gt = _gt(one_based=False)
  pred = gt.coords + 0.25
  pred[1, 2] = np.nan
  for name in ('p.npy', 'p.json', 'p.mat'):
    path = str(tmp_path / name)
    pf.save_predictions(path, pred)
    np.testing.assert_array_equal(pf.load_predictions(path, gt), pred)
  path = str(tmp_path / 'list.json')  # a bare J x 2 x N list, no NaN
  with open(path, 'w') as f:
    json.dump(gt.coords.transpose(1, 2, 0).tolist(), f)
  np.testing.assert_array_equal(pf.load_predictions(path, gt), gt.coords)


def test_load_h5(tmp_path):
  h5py = pytest.importorskip('h5py')
  gt = _gt(one_based=False)
  path = str(tmp_path / 'p.h5')
  with h5py.File(path, 'w') as f:
    f['preds'] = gt.coords
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
  gt = pf.GroundTruth('mpii', coords, visible, head_boxes=boxes,
                      one_based=True)
  path = str(tmp_path / 'gt.mat')
  pf.save_ground_truth_mat(path, gt)
  stored = scipy.io.loadmat(path)
  np.testing.assert_array_equal(stored['pos_gt_src'][4, :, 1], [0, 0])
  np.testing.assert_allclose(stored['headboxes_src'][:, :, 0], boxes[0] + 1)
  back = pf.load_ground_truth(path, 'mpii')
  np.testing.assert_array_equal(back.visible, visible)
  np.testing.assert_allclose(back.coords[visible], coords[visible])
  np.testing.assert_allclose(back.head_boxes, boxes)
  assert back.one_based


def test_ground_truth_errors(tmp_path):
  path = str(tmp_path / 'release.mat')
  scipy.io.savemat(path, {'RELEASE': np.zeros(3)})
  with pytest.raises(NotImplementedError, match='gt_valid.mat'):
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
      pf.FLIC_COORD_COLUMNS)].T)


def test_lsp_joints_fixture(tmp_path):
  joints = np.random.default_rng(3).uniform(0, 100, size=(3, 14, 2000))
  joints[2] = joints[2] > 50
  path = str(tmp_path / 'joints.mat')
  scipy.io.savemat(path, {'joints': joints})
  gt = pf.load_ground_truth(path, 'lsp')
  assert gt.coords.shape == (1000, 14, 2) and gt.visible.all()
  np.testing.assert_array_equal(gt.coords[0], joints[:2, :, 1000].T)
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
