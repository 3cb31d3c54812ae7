"""The MRF keeps a joint only where it is right more often, beyond chance
(spatial_choice)."""

import dataclasses
import json

import ml_collections
import numpy as np
import pytest

from cascade_jax import joint_sets
from cascade_jax.train import spatial_choice

FLIC = joint_sets.FLIC
PEOPLE = 40


def _predictions(outcomes, unlabelled=()):
  """40 people with a 100 px torso. ``outcomes`` {joint: (both, coarse_only,
  mrf_only)}: that many examples, in this order, where both methods, only
  the coarse one and only the MRF are right (exactly on the ground truth);
  everywhere else both are 30 px off, wrong at PCK@0.2 (20 px)."""
  gt = np.zeros((PEOPLE, FLIC.num_joints, 2))
  gt[:, FLIC.index('r_hip')] = (0.0, 100.0)  # torso: l_shoulder - r_hip
  visible = np.ones((PEOPLE, FLIC.num_joints), bool)
  for joint in unlabelled:
    visible[:, FLIC.index(joint)] = False
  coarse, mrf = gt + (30.0, 0.0), gt + (30.0, 0.0)
  for joint, (both, coarse_only, mrf_only) in outcomes.items():
    j = FLIC.index(joint)
    coarse[:both + coarse_only, j] = gt[:both + coarse_only, j]
    mrf[:both, j] = gt[:both, j]
    first = both + coarse_only
    mrf[first:first + mrf_only, j] = gt[first:first + mrf_only, j]
  return {'gt': gt, 'visible': visible, 'coarse': coarse, 'spatial': mrf}


_OUTCOMES = {'l_elbow': (10, 1, 8),   # 8 wins to 1: p = 10 / 512
             'r_elbow': (10, 0, 2),   # 2 to 0: p = 1 / 4
             'l_wrist': (10, 3, 3),   # a tie
             'nose': (20, 5, 1),      # the MRF is worse
             'l_shoulder': (40, 0, 0), 'r_hip': (40, 0, 0)}


@pytest.mark.parametrize('level, kept', [(0.1, {'l_elbow'}),
                                         (0.5, {'l_elbow', 'r_elbow'})])
def test_the_mrf_is_kept_where_it_is_right_more_often_beyond_chance(level,
                                                                   kept):
  result = spatial_choice.compare(_predictions(_OUTCOMES, ('r_eye',)), FLIC,
                                  level)
  assert {name for name, keep in zip(result['joints'], result['active'])
          if keep} == kept
  elbow = FLIC.index('l_elbow')
  assert (result['better'][elbow], result['worse'][elbow]) == (8, 1)
  assert result['p_value'][elbow] == pytest.approx(10 / 512)
  assert result['p_value'][FLIC.index('r_elbow')] == pytest.approx(0.25)
  assert (result['coarse'][elbow], result['spatial'][elbow]) == (11 / 40,
                                                                 18 / 40)
  assert result['counts'][FLIC.index('r_eye')] == 0
  assert result['coarse'][FLIC.index('r_eye')] is None  # JSON has no NaN
  assert (result['threshold'], result['level']) == (0.2, level)


def test_sign_test_is_the_binomial_tail():
  assert spatial_choice.sign_test(3, 0) == 1 / 8
  assert spatial_choice.sign_test(0, 0) == 1.0
  # P(X >= 6), X ~ Binomial(10, 1/2): (210 + 120 + 45 + 10 + 1) / 1024.
  assert spatial_choice.sign_test(6, 4) == pytest.approx(386 / 1024)


def test_with_active_replaces_only_the_choice():
  params = {'coarse': {'w': np.ones(2)},
            'spatial': {'weights': np.ones(4), 'active': np.ones(3)}}
  chosen = spatial_choice.with_active(params, [True, False, True])
  np.testing.assert_array_equal(chosen['spatial']['active'], [1.0, 0.0, 1.0])
  assert chosen['spatial']['active'].dtype == np.float32
  assert chosen['coarse'] is params['coarse']
  assert chosen['spatial']['weights'] is params['spatial']['weights']
  np.testing.assert_array_equal(params['spatial']['active'], np.ones(3))


def test_compare_names_the_methods_it_compares():
  predictions = _predictions(_OUTCOMES)
  result = spatial_choice.compare(
      {'gt': predictions['gt'], 'visible': predictions['visible'],
       'cascade_no_spatial': predictions['coarse'],
       'cascade': predictions['spatial']}, FLIC, 0.1,
      method='cascade', baseline='cascade_no_spatial')
  elbow = FLIC.index('l_elbow')
  assert (result['method'], result['baseline']) == ('cascade',
                                                    'cascade_no_spatial')
  assert (result['cascade_no_spatial'][elbow],
          result['cascade'][elbow]) == (11 / 40, 18 / 40)
  assert [n for n, k in zip(result['joints'], result['active']) if k] == [
      'l_elbow']


@dataclasses.dataclass(frozen=True)
class _State:
  params: dict

  def replace(self, **changes):
    return dataclasses.replace(self, **changes)


def _choice_config():
  config = ml_collections.ConfigDict()
  config.train = {'spatial_choice_split': 'train[:40]',
                  'spatial_choice_level': 0.1}
  config.data = {'name': 'flic'}
  config.eval = {'batch_size': 8, 'subpixel': False, 'fusion': 'product'}
  return config


def test_the_end_of_training_keeps_a_joint_only_if_the_cascade_gains_too(
    monkeypatch, tmp_path):
  """Both tests on the same held-out images: the MRF's argmax against the
  coarse one, then the cascade at the MRF's windows against the cascade at
  the coarse windows; a joint the first test dropped stays dropped."""
  mrf_wins = _predictions({'l_elbow': (10, 1, 8), 'r_elbow': (10, 0, 9),
                           'l_wrist': (10, 0, 9), 'nose': (10, 5, 0)})
  cascade_wins = _predictions({'l_elbow': (10, 0, 9),  # kept by both
                               'r_elbow': (10, 3, 3),  # the cascade ties
                               'nose': (10, 0, 9)})    # dropped first
  predicted = {'spatial': mrf_wins['spatial'], 'coarse': mrf_wins['coarse'],
               'cascade': cascade_wins['spatial'],
               'cascade_no_spatial': cascade_wins['coarse'],
               'gt': mrf_wins['gt'], 'visible': mrf_wins['visible']}
  asked = []

  def predict_split(state, source, spec, batch_size, **options):
    asked.append((np.asarray(state.params['spatial']['active']).copy(),
                  options['fusion']['fusion']))
    return predicted

  monkeypatch.setattr(spatial_choice.evaluate, 'predict_split', predict_split)
  monkeypatch.setattr(spatial_choice.datasets, 'load_split',
                      lambda data, split: (range(PEOPLE), FLIC))
  state = _State({'spatial': {'active': np.zeros(FLIC.num_joints,
                                                 np.float32)}})
  config = _choice_config()

  state, first = spatial_choice.choose_joints(state, config, None,
                                              str(tmp_path))
  kept = lambda active: {n for n, a in zip(FLIC.joints, active) if a > 0.5}
  assert kept(first['active']) == {'l_elbow', 'r_elbow', 'l_wrist'}
  state, second = spatial_choice.confirm_joints(state, config, None,
                                                str(tmp_path))
  assert kept(second['active']) == {'l_elbow'}  # l_wrist: no cascade gain
  assert kept(state.params['spatial']['active']) == {'l_elbow'}
  # Each test predicted with the MRF on every joint, fused as evaluated.
  assert all(active.all() and fusion == 'product' for active, fusion in asked)

  with open(tmp_path / spatial_choice.RESULT_FILE) as f:
    record = json.load(f)
  assert record['spatial_stage']['active'] == first['active']
  assert record['end_of_training']['baseline'] == 'cascade_no_spatial'
  assert kept(record['active']) == {'l_elbow'}
  # A new spatial stage voids the old confirmation.
  spatial_choice.choose_joints(state, config, None, str(tmp_path))
  with open(tmp_path / spatial_choice.RESULT_FILE) as f:
    record = json.load(f)
  assert 'end_of_training' not in record
  assert kept(record['active']) == {'l_elbow', 'r_elbow', 'l_wrist'}


def test_a_base_saved_before_train_split_existed_counts_as_trained_on_train(
    monkeypatch):
  config = _choice_config()
  config.data = {'name': 'flic', 'builder_config': 'flic',
                 'train_split': 'train[400:]'}
  config.train.init_from = '/runs/old_cascade'
  monkeypatch.setattr(spatial_choice.datasets, 'load_split',
                      lambda data, split: (range(PEOPLE), FLIC))
  monkeypatch.setattr(spatial_choice.checkpoint, 'restore_config',
                      lambda workdir: ml_collections.ConfigDict(
                          {'data': {'name': 'flic', 'builder_config': 'flic'}}))
  asked = []

  def shared_examples(data, split, choice):
    asked.append((split, choice))
    return {'train[400:]': 0, 'train': 40}[split]

  monkeypatch.setattr(spatial_choice.datasets, 'shared_examples',
                      shared_examples)
  with pytest.raises(ValueError, match="'train\\[:40\\]' overlaps 'train', the "
                     "data.train_split of train.init_from='/runs/old_cascade' "
                     "\\(shared images: 40\\)"):
    spatial_choice.check_held_out(config)
  assert asked == [('train[400:]', 'train[:40]'), ('train', 'train[:40]')]
