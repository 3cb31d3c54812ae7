"""The MRF keeps a joint only where it is right more often, beyond chance
(spatial_choice)."""

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
