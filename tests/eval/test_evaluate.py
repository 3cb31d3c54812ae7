"""Checkpoint evaluation: scores and tables against hand-computed figures,
official predictions and tables from real-dataset builders."""

import ml_collections
import numpy as np
import pytest
import scipy.io

from cascade_jax import joint_sets
from cascade_jax.data.mpii import valid_split
from cascade_jax.eval import evaluate
from cascade_jax.eval import official
from cascade_jax.eval import prediction_files
from cascade_jax.eval import tables
from cascade_jax.train import loop
from configs import synthetic
from tests.data import fixtures
from tests.eval import scoring_fixtures


@pytest.mark.slow
def test_lsp_evaluation_writes_one_based_official_predictions(tmp_path):
  manual = tmp_path / 'manual'
  fixtures.write_lsp(manual / 'lsp_dataset', fixtures.lsp_joints(2000), 4)
  config = synthetic.get_config()
  config.data = ml_collections.ConfigDict(dict(
      config.data.to_dict(), name='lsp', builder_config='lsp',
      data_dir=str(tmp_path / 'tfds'), manual_dir=str(manual),
      crop_center='person_center', box_scale=1.25, input_size=(32, 32),
      worker_count=0))
  config.model.bank_widths, config.model.head_widths = (2, 2, 2, 4), (4, 4)
  config.model.name = 'coarse'
  config.train.stage_steps.update(coarse=1, fine=0, joint=0)
  config.train.batch_size = 2
  config.eval.batch_size = 250
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(config, workdir)
  evaluate.evaluate_checkpoint(config, workdir)

  predictions = np.load(f'{workdir}/eval/predictions.npz')
  stored = scipy.io.loadmat(f'{workdir}/eval/lsp_predictions.mat')['pred']
  assert stored.shape == (2, 14, 1000)  # 2 x J x N, the LSP layout
  np.testing.assert_allclose(stored.transpose(2, 1, 0),
                             predictions['coarse'] + 1, rtol=1e-6)
  # Ground truth in the original 1-based file equals ours + 1.
  labels = scipy.io.loadmat(str(manual / 'lsp_dataset' / 'joints.mat'))
  np.testing.assert_allclose(labels['joints'][:2, :, 1000:].transpose(2, 1, 0),
                             predictions['gt'] + 1, rtol=1e-5)


@pytest.mark.slow
def test_mpii_evaluation_prints_pckh_from_head_boxes(tmp_path, monkeypatch,
                                                     capsys):
  """launch.eval's path on an MPII build: PCKh@0.5 in the Table-4 layout
  under both head conventions, torso PCK only as a named extra."""
  monkeypatch.setattr(valid_split, 'load', lambda: np.array([[0, 1]]))
  images = fixtures.mpii_images()
  fixtures.write_mpii(tmp_path / 'manual', fixtures.mpii_release(images),
                      [name for name, _, _ in images])
  config = synthetic.get_config()
  config.data = ml_collections.ConfigDict(dict(
      config.data.to_dict(), name='mpii', builder_config='mpii',
      data_dir=str(tmp_path / 'tfds'), manual_dir=str(tmp_path / 'manual'),
      crop_center='person_center', box_scale=1.25, input_size=(32, 32),
      eval_split='validation', worker_count=0))
  config.model.bank_widths, config.model.head_widths = (2, 2, 2, 4), (4, 4)
  config.model.name = 'coarse'
  config.train.stage_steps.update(coarse=1, fine=0, joint=0)
  config.train.batch_size = 2
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(config, workdir)
  capsys.readouterr()
  results = evaluate.evaluate_checkpoint(config, workdir)
  text = capsys.readouterr().out
  assert text.index('MPII PCKh@0.5, paper Table 4 layout, MPII official '
                    '(Matlab)') < text.index('HRNet python port') < (
                        text.index("Step 1: extra, not the paper's metric"))
  # The validation person has 12 points, no l_shoulder: no torso.
  assert '1 of 1 people left out: torso joints not both labelled' in text
  predictions = np.load(f'{workdir}/eval/predictions.npz')
  # The fixture's head box (10, 4)-(14, 9), 1-based.
  np.testing.assert_allclose(predictions['head_boxes'],
                             [[[9.0, 3.0], [13.0, 8.0]]])
  scores = results['methods']['coarse']['official']
  assert set(scores) == {'mpii_official', 'mpii_hrnet'}
  assert set(scores['mpii_official']['columns']) == {
      'Head', 'Shoulder', 'Elbow', 'Wrist', 'Hip', 'Knee', 'Ankle', 'UBody',
      'Total'}


# ------------------------------------------- hand-computed scoring fixtures

FLIC = joint_sets.FLIC
MPII = joint_sets.MPII


def test_score_flic_hand_computed():
  predictions = scoring_fixtures.flic_people()
  scored = evaluate.score(predictions, 'coarse', FLIC, np.array([0.05, 0.2]))
  assert scored['unusable_torso'] == 1
  np.testing.assert_array_equal(scored['norm'], [100.0, 100.0, np.nan])
  np.testing.assert_array_equal(scored['counts'], 2)  # A and B only
  at_005 = tables.group_scores(scored['curve'][0], FLIC, scored['counts'])
  # Every joint of A and B is correct but A's nose (6 px > 5).
  assert at_005 == {'Head': 0.5, 'Shoulder': 1.0, 'Elbow': 1.0,
                    'Wrist': 1.0, 'Hip': 1.0,
                    'Mean': pytest.approx(17 / 18)}
  at_02 = tables.group_scores(scored['curve'][1], FLIC, scored['counts'])
  assert all(v == 1.0 for v in at_02.values())


def test_official_flic_hand_computed():
  """Paper Table 3 as the official scorer: B's predictions are made
  observer-centric, its torso is 80 px, and its elbow 4.5 px off misses."""
  predictions = scoring_fixtures.flic_people()
  [s] = evaluate.official_scores(predictions, 'coarse', 'flic')
  assert s.columns == {'Head': 0.5, 'Shoulder': 1.0, 'Elbow': 0.75,
                       'Wrist': 1.0}
  assert s.notes == (
      '1 of 3 backward-facing ground truths swapped (modec_arms)',
      '1 of 3 examples left out: torso joints not both labelled',
      '1 of 3 person-centric predictions made observer-centric (modec_arms '
      'rule on the predicted arms)')
  # Scored as given, B's person-centric arms all miss their swapped labels.
  raw = official.flic_pck(predictions['coarse'], predictions['gt'],
                          predictions['visible'])
  assert raw.columns == {'Head': 0.5, 'Shoulder': 0.5, 'Elbow': 0.5,
                         'Wrist': 0.5}


def test_score_mpii_hand_computed():
  predictions = scoring_fixtures.mpii_people()
  scored = evaluate.score(predictions, 'coarse', MPII, np.array([0.05, 0.2]))
  assert scored['unusable_torso'] == 1
  np.testing.assert_array_equal(scored['counts'], 1)  # P only
  at_005 = tables.group_scores(scored['curve'][0], MPII, scored['counts'])
  # P misses head_top (12 px) and l_wrist (16 px) at 5 px; r_wrist 4.8 px
  # is correct with ||lsho - rhip|| = 100 (a miss with the other diagonal).
  assert at_005 == {'Head': 0.5, 'Shoulder': 1.0, 'Elbow': 1.0, 'Wrist': 0.5,
                    'Hip': 1.0, 'Knee': 1.0, 'Ankle': 1.0,
                    'UBody': pytest.approx(5 / 6),
                    'Mean': pytest.approx(12 / 14)}
  at_02 = tables.group_scores(scored['curve'][1], MPII, scored['counts'])
  assert all(v == 1.0 for v in at_02.values())


def test_official_mpii_hand_computed():
  """PCKh@0.5 = 15 px. 27 labelled joints of the 14; P misses l_wrist, Q
  upper_neck. HRNet's Mean@0.1 (r = 0.11: 3.3 px) also loses head_top,
  r_wrist and l_elbow."""
  predictions = scoring_fixtures.mpii_people()
  matlab, hrnet = evaluate.official_scores(predictions, 'coarse', 'mpii')
  assert matlab.columns == {
      'Head': 0.75, 'Shoulder': 1.0, 'Elbow': 1.0, 'Wrist': 0.75, 'Hip': 1.0,
      'Knee': 1.0, 'Ankle': 1.0, 'UBody': pytest.approx(11 / 12),
      'Total': pytest.approx(25 / 27)}
  assert hrnet.columns['Head'] == 1.0
  assert hrnet.columns['Mean'] == pytest.approx(25 / 27)
  assert hrnet.extras['Mean@0.1'] == pytest.approx(22 / 27)
  boxes = predictions['head_boxes'].copy()
  boxes[1] = 0.0
  with pytest.raises(ValueError, match=r'no head box for examples \[1\]: '
                     'rebuild the MPII dataset'):
    evaluate.official_scores(dict(predictions, head_boxes=boxes), 'coarse',
                             'mpii')
  assert evaluate.official_scores(predictions, 'coarse', 'synthetic_pose') == []


def _report_text(predictions, joint_set, dataset: str) -> str:
  """launch.eval's text for the 'coarse' predictions of a fixture, step 7."""
  thresholds = np.linspace(0.0, 0.2, 21)
  scored = {'coarse': evaluate.score(predictions, 'coarse', joint_set,
                                     thresholds)}
  officials = {'coarse': evaluate.official_scores(predictions, 'coarse',
                                                  dataset)}
  return evaluate._report(scored, officials, joint_set, thresholds, 7,
                          'coarse')['text']


def test_report_text_mpii_table4_layout_and_torso_extra():
  text = _report_text(scoring_fixtures.mpii_people(), MPII, 'mpii')
  lines = text.splitlines()
  assert lines[0] == ('Step 7: MPII PCKh@0.5, paper Table 4 layout, MPII '
                      'official (Matlab) (Head = mean of upper neck and head '
                      'top)')
  assert lines[1].split() == ['Method', 'Head', 'Shoulder', 'Elbow', 'Wrist',
                              'Hip', 'Knee', 'Ankle', 'UBody', 'Total']
  assert lines[3].split() == ['coarse', '75.0', '100.0', '100.0', '75.0',
                              '100.0', '100.0', '100.0', '91.7', '92.6']
  assert ('Step 7: MPII PCKh@0.5, paper Table 4 layout, HRNet python port '
          '(Head = head top)') in lines
  extra = [line for line in lines if 'torso-normalised' in line]
  assert extra == ["Step 7: extra, not the paper's metric: PCK "
                   '(torso-normalised, ||l_shoulder - r_hip||; person-centric '
                   'labels as trained); 1 of 2 people left out: torso joints '
                   'not both labelled']
  assert text.index('PCKh') < text.index('extra')


def test_report_text_flic_names_each_convention():
  text = _report_text(scoring_fixtures.flic_people(), FLIC, 'flic')
  assert ('Step 7: FLIC PCK@0.05, paper Table 3 layout, official scorer '
          '(MODEC): observer-centric labels') in text
  assert 'person-centric labels as trained' in text
  assert '  note: 1 of 3 person-centric predictions made observer-centric' in (
      text)


def test_flic_official_file_reproduces_the_printed_table_3(tmp_path):
  """launch.eval's flic_predictions.mat holds observer-centric predictions:
  MODEC's scoring of it (launch.evaluate_predictions) gives the Table 3 row
  that launch.eval prints, worked out in scoring_fixtures.flic_people."""
  predictions = scoring_fixtures.flic_people()
  labels = predictions['gt'] + 1.0  # examples.mat is 1-based
  labels[~predictions['visible']] = np.nan  # C's r_hip
  examples = [
      fixtures.flic_entry(joints, f'movie-{k:08d}.jpg', train=False)
      for k, joints in enumerate(labels)]
  fixtures.write_flic(tmp_path, examples)
  pred_path = str(tmp_path / 'flic_predictions.mat')
  prediction_files.save_official_predictions(
      pred_path, evaluate.official_file_predictions(predictions['coarse'],
                                                    'flic'), 'flic')
  _, data = official.evaluate_prediction_files(
      'flic', str(tmp_path / 'examples.mat'), pred_path)
  [printed] = evaluate.official_scores(predictions, 'coarse', 'flic')
  assert data['scores']['flic_modec_arms']['columns'] == printed.columns == {
      'Head': 0.5, 'Shoulder': 1.0, 'Elbow': 0.75, 'Wrist': 1.0}
