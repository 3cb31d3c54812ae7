"""Joint sets: flip permutations by name, edges, torso pair."""

import numpy as np
import pytest

from cascade_jax import joint_sets


@pytest.mark.parametrize('joint_set', list(joint_sets.JOINT_SETS.values()),
                         ids=lambda s: s.name)
def test_flip_swaps_left_and_right_by_name(joint_set):
  perm = joint_set.flip_permutation
  for k, name in enumerate(joint_set.joints):
    partner = joint_set.joints[perm[k]]
    if name.startswith('l_'):
      assert partner == 'r_' + name[2:]
    elif name.startswith('r_'):
      assert partner == 'l_' + name[2:]
    else:
      assert partner == name
  np.testing.assert_array_equal(perm[perm], np.arange(joint_set.num_joints))


def test_flic_order_matches_examples_mat_columns():
  assert joint_sets.FLIC.joints[:3] == ('l_shoulder', 'l_elbow', 'l_wrist')
  assert joint_sets.FLIC.joints[-1] == 'nose'
  assert joint_sets.FLIC.num_joints == 11


def test_mpii_ids_follow_official_numbering():
  assert joint_sets.MPII.index('r_ankle') == 0
  assert joint_sets.MPII.index('head_top') == 9
  assert joint_sets.MPII.index('l_wrist') == 15


def test_edges_and_torso_are_indices_into_the_set():
  edges = joint_sets.MPII.edge_indices
  assert edges.shape == (15, 2)
  assert edges.max() < 16
  assert joint_sets.FLIC.torso_indices == (0, 7)


def test_unknown_names_raise_with_the_known_ones():
  with pytest.raises(KeyError, match='known'):
    joint_sets.get('coco')
  with pytest.raises(KeyError, match='l_shoulder'):
    joint_sets.FLIC.index('left_shoulder')
  with pytest.raises(ValueError, match='unknown joint'):
    joint_sets.JointSet('bad', ('a', 'b'), (('a', 'c'),), torso=('a', 'b'))
