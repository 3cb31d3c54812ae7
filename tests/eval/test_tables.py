"""Tests for cascade_jax.eval.tables against hand-computed values."""

import json

import numpy as np
import pytest

from cascade_jax import joint_sets
from cascade_jax.eval import official
from cascade_jax.eval import tables

FLIC_VALUES = {
    'l_shoulder': 0.8, 'l_elbow': 0.6, 'l_wrist': 0.4,
    'r_shoulder': 0.6, 'r_elbow': 0.4, 'r_wrist': 0.2,
    'l_hip': 0.9, 'r_hip': 0.7, 'l_eye': 0.1, 'r_eye': 0.1, 'nose': 1.0,
}
MPII_VALUES = {
    'r_ankle': 0.1, 'r_knee': 0.2, 'r_hip': 0.3, 'l_hip': 0.5, 'l_knee': 0.4,
    'l_ankle': 0.3, 'pelvis': 0.0, 'thorax': 0.0, 'upper_neck': 0.9,
    'head_top': 0.7, 'r_wrist': 0.5, 'r_elbow': 0.6, 'r_shoulder': 0.8,
    'l_shoulder': 1.0, 'l_elbow': 0.8, 'l_wrist': 0.7,
}


def _vector(joint_set, values):
  return np.array([values[j] for j in joint_set.joints])


def test_group_scores_flic():
  scores = tables.group_scores(_vector(joint_sets.FLIC, FLIC_VALUES),
                               joint_sets.FLIC)
  assert list(scores) == ['Head', 'Shoulder', 'Elbow', 'Wrist', 'Hip', 'Mean']
  # Head is the nose only; the eyes (0.1) join no group.
  expected = {'Head': 1.0, 'Shoulder': 0.7, 'Elbow': 0.5, 'Wrist': 0.3,
              'Hip': 0.8, 'Mean': 5.6 / 9}
  for key, value in expected.items():
    assert scores[key] == pytest.approx(value), key


def test_group_scores_mpii():
  scores = tables.group_scores(_vector(joint_sets.MPII, MPII_VALUES),
                               joint_sets.MPII)
  assert list(scores) == ['Head', 'Shoulder', 'Elbow', 'Wrist', 'Hip', 'Knee',
                          'Ankle', 'UBody', 'Mean']
  # Pelvis and thorax (0.0) are left out of every column; UBody is the six
  # arm joints (0.8 + 1.0 + 0.6 + 0.8 + 0.5 + 0.7), no head (with the head
  # it would be 6.0 / 8).
  expected = {'Head': 0.8, 'Shoulder': 0.9, 'Elbow': 0.7, 'Wrist': 0.6,
              'Hip': 0.4, 'Knee': 0.3, 'Ankle': 0.2, 'UBody': 4.4 / 6,
              'Mean': 7.8 / 14}
  for key, value in expected.items():
    assert scores[key] == pytest.approx(value), key


def test_group_scores_mpii_pooled_with_counts():
  counts = np.full(16, 10)
  counts[joint_sets.MPII.index('l_wrist')] = 30
  scores = tables.group_scores(_vector(joint_sets.MPII, MPII_VALUES),
                               joint_sets.MPII, counts=counts)
  # Left/right still weigh the same inside a group ...
  assert scores['Wrist'] == pytest.approx(0.6)
  # ... while UBody and Mean pool examples: l_wrist (0.7) counts three times.
  assert scores['UBody'] == pytest.approx((44 + 0.7 * 20) / (60 + 20))
  assert scores['Mean'] == pytest.approx((78 + 0.7 * 20) / (140 + 20))


def test_group_scores_lsp_head_is_neck_and_head_top():
  """Pishchulin's LSP table and official.py: Head = mean(neck, head top)."""
  values = {j: 0.5 for j in joint_sets.LSP.joints}
  values['head_top'], values['neck'] = 0.9, 0.1
  values['l_shoulder'] = values['r_shoulder'] = 1.0
  scores = tables.group_scores(_vector(joint_sets.LSP, values), joint_sets.LSP)
  assert scores['Head'] == pytest.approx(0.5)
  # Arms only: (1 + 1 + 4 * 0.5) / 6; with the head it would be 5 / 8.
  assert scores['UBody'] == pytest.approx(4 / 6)
  # 10 joints at 0.5, shoulders 2 x 1.0, neck 0.1 + head top 0.9.
  assert scores['Mean'] == pytest.approx(8.0 / 14)


def test_group_scores_nan_joints_skipped():
  values = dict(FLIC_VALUES, r_wrist=np.nan)
  scores = tables.group_scores(_vector(joint_sets.FLIC, values), joint_sets.FLIC)
  assert scores['Wrist'] == pytest.approx(0.4)  # the left one alone
  assert scores['Mean'] == pytest.approx(5.4 / 8)
  values['l_wrist'] = np.nan
  scores = tables.group_scores(_vector(joint_sets.FLIC, values), joint_sets.FLIC)
  assert np.isnan(scores['Wrist'])


def test_group_scores_rejects_wrong_length():
  with pytest.raises(ValueError, match='J = 11'):
    tables.group_scores(np.zeros(16), joint_sets.FLIC)


def test_official_columns_are_the_tables_groups():
  """One definition: official.py's Head and UBody are tables.py's."""
  by_name = {c.name: c for c in official.MPII_OFFICIAL_COLUMNS}
  assert set(by_name['Head'].joints) == {'upper_neck', 'head_top'}
  assert set(by_name['UBody'].joints) == {
      'l_shoulder', 'r_shoulder', 'l_elbow', 'r_elbow', 'l_wrist', 'r_wrist'}
  assert by_name['UBody'].pooled
  assert set(official.LSP_COLUMNS[0].joints) == {'neck', 'head_top'}
  assert official.FLIC_COLUMNS[0].joints == ('nose',)


def test_group_curves_per_threshold():
  per_joint = _vector(joint_sets.FLIC, FLIC_VALUES)
  curve = np.stack([per_joint / 2, per_joint])
  columns = tables.group_curves(curve, joint_sets.FLIC)
  np.testing.assert_allclose(columns['Elbow'], [0.25, 0.5])
  np.testing.assert_allclose(columns['Head'], [0.5, 1.0])


def test_format_table_layout():
  flic = joint_sets.FLIC
  rows = {
      'Baseline': {'Elbow': 0.226, 'Wrist': 0.153},
      'This work': tables.group_scores(_vector(flic, FLIC_VALUES), flic),
  }
  text = tables.format_table(
      rows, 'FLIC PCK@0.05',
      columns=['Head', 'Shoulder', 'Elbow', 'Wrist', 'Hip', 'Mean'])
  lines = text.splitlines()
  assert lines[0] == 'FLIC PCK@0.05'
  header = lines[1]
  positions = [header.index(c) for c in
               ['Method', 'Head', 'Shoulder', 'Elbow', 'Wrist', 'Hip', 'Mean']]
  assert positions == sorted(positions)
  assert lines[3].split() == ['Baseline', '-', '-', '22.6', '15.3', '-', '-']
  assert lines[4].split() == ['This', 'work', '100.0', '70.0', '50.0', '30.0',
                              '80.0', '62.2']
  # Fixed width: every row as long as the header.
  assert {len(line) for line in lines[1:]} == {len(header)}


def test_format_table_default_columns_follow_rows():
  text = tables.format_table({'a': {'Head': 0.5, 'Wrist': 1.0},
                              'b': {'Hip': 0.25}})
  header = text.splitlines()[0].split()
  assert header == ['Method', 'Head', 'Wrist', 'Hip']
  assert text.splitlines()[3].split() == ['b', '-', '-', '25.0']


def test_per_joint_table_lists_every_joint():
  flic = joint_sets.FLIC
  counts = np.arange(11) + 1
  text = tables.per_joint_table(_vector(flic, FLIC_VALUES), flic, counts=counts,
                                title='per joint')
  lines = text.splitlines()
  assert lines[0] == 'per joint'
  assert len(lines) == 3 + flic.num_joints
  body = {line.split()[0]: line.split()[1:] for line in lines[3:]}
  assert list(body) == list(flic.joints)
  assert body['l_eye'] == ['-', '10.0', '9']
  assert body['nose'] == ['Head', '100.0', '11']
  assert body['r_hip'] == ['Hip', '70.0', '8']


def test_to_json_dict_is_json_ready():
  values = dict(FLIC_VALUES, r_eye=np.nan)
  out = tables.to_json_dict(_vector(joint_sets.FLIC, values), joint_sets.FLIC,
                            counts=np.ones(11, dtype=np.int64), threshold=0.05)
  decoded = json.loads(json.dumps(out, allow_nan=False))
  assert decoded['threshold'] == 0.05
  assert decoded['per_joint']['r_eye'] is None
  assert decoded['groups']['Hip'] == pytest.approx(0.8)
  assert decoded['counts']['nose'] == 1


def test_tables_do_not_mutate_inputs():
  per_joint = _vector(joint_sets.MPII, MPII_VALUES)
  per_joint[0] = np.nan
  counts = np.arange(16)
  copies = per_joint.copy(), counts.copy()
  per_joint.setflags(write=False)
  counts.setflags(write=False)
  tables.group_scores(per_joint, joint_sets.MPII, counts)
  tables.per_joint_table(per_joint, joint_sets.MPII, counts)
  tables.to_json_dict(per_joint, joint_sets.MPII, counts)
  np.testing.assert_array_equal(per_joint, copies[0])
  np.testing.assert_array_equal(counts, copies[1])
