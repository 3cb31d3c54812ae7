"""Per-joint PCK tables laid out like the paper's Table 3 (FLIC) and 4 (MPII).

Groups come from joint names: strip 'l_' / 'r_' and look the base name up in
`_GROUP_OF_BASE`; left and right are averaged, unweighted, as the papers and
the MPII toolkit do. Head is 'nose' only for FLIC (the paper's "head(nose)"),
the mean of 'upper_neck' and 'head_top' for MPII and of 'neck' and
'head_top' for LSP (the MPII toolkit, Pishchulin's LSP table and official.py
alike). UBody is the MPII toolkit's and the paper's Table 4 "Upper Body": the
six arm joints (shoulders, elbows, wrists), no head. Eyes, pelvis and thorax
join no group (MPII's official 14-joint table drops pelvis and thorax),
though they still appear in `per_joint_table`. Values are fractions in
[0, 1]; tables print them as percentages with one decimal, and NaN (no
labelled example) as '-'.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

from cascade_jax import joint_sets as joint_sets_lib

# Column order of paper Tables 3 and 4.
GROUP_ORDER = ('Head', 'Shoulder', 'Elbow', 'Wrist', 'Hip', 'Knee', 'Ankle')
UPPER_BODY = ('Shoulder', 'Elbow', 'Wrist')
LOWER_BODY = ('Knee', 'Ankle')

_GROUP_OF_BASE = {
    'nose': 'Head',
    'head_top': 'Head',
    'upper_neck': 'Head',
    'neck': 'Head',
    'shoulder': 'Shoulder',
    'elbow': 'Elbow',
    'wrist': 'Wrist',
    'hip': 'Hip',
    'knee': 'Knee',
    'ankle': 'Ankle',
}


class Column(NamedTuple):
  """One table column: a name, the joints it covers, and how they combine.

  Attributes:
    name: the column header ('Head', 'UBody', 'Total').
    joints: joint names (in the joint set) the column covers.
    pooled: True pools the joints' examples (weights = labelled counts, as
      the MPII toolkit's UBody / Total); False averages the joints' PCK with
      equal weight (left/right groups of the official tables).
  """
  name: str
  joints: tuple[str, ...]
  pooled: bool = False


def _base_name(joint: str) -> str:
  return joint[2:] if joint.startswith(('l_', 'r_')) else joint


def joint_groups(joint_set: joint_sets_lib.JointSet) -> dict[str, tuple[int, ...]]:
  """Table groups of ``joint_set`` in paper column order.

  Returns:
    {group name: joint indices}, only groups with at least one joint.
  """
  groups = {}
  for index, joint in enumerate(joint_set.joints):
    group = _GROUP_OF_BASE.get(_base_name(joint))
    if group is not None:
      groups.setdefault(group, []).append(index)
  return {g: tuple(groups[g]) for g in GROUP_ORDER if g in groups}


def is_full_body(joint_set: joint_sets_lib.JointSet) -> bool:
  """True for Table-4-style sets (with knees or ankles): adds a UBody column."""
  return any(g in joint_groups(joint_set) for g in LOWER_BODY)


def _check_per_joint(per_joint, joint_set, name='per_joint') -> np.ndarray:
  per_joint = np.asarray(per_joint, dtype=np.float64)
  if per_joint.ndim < 1 or per_joint.shape[-1] != joint_set.num_joints:
    raise ValueError(f'{name} must have shape [..., J] with J = '
                     f'{joint_set.num_joints} for joint set {joint_set.name!r}, '
                     f'got {per_joint.shape}')
  return per_joint


def _check_counts(counts, joint_set):
  if counts is None:
    return None
  counts = np.asarray(counts)
  if counts.shape != (joint_set.num_joints,):
    raise ValueError(f'counts must have shape [J] = ({joint_set.num_joints},),'
                     f' got {counts.shape}')
  return counts


def _mean_over(values: np.ndarray, indices, counts) -> np.ndarray:
  """Mean over joints ``indices`` of values [..., J], skipping NaN columns.

  With ``counts`` [J] the mean pools examples (weights = labelled counts), as
  the MPII toolkit's Total; without it every joint weighs the same.
  """
  sub = values[..., list(indices)]
  if counts is None:
    weights = np.ones(len(indices))
  else:
    weights = np.asarray(counts, dtype=np.float64)[list(indices)]
  valid = ~np.isnan(sub) & (weights > 0)
  total = np.sum(np.where(valid, sub * weights, 0.0), axis=-1)
  weight = np.sum(np.where(valid, weights, 0.0), axis=-1)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(weight > 0, total / np.where(weight > 0, weight, 1), np.nan)


def group_columns(joint_set: joint_sets_lib.JointSet) -> tuple[Column, ...]:
  """The joint-group columns of ``joint_set`` (`joint_groups`) as `Column`s."""
  return tuple(Column(g, tuple(joint_set.joints[i] for i in idx))
               for g, idx in joint_groups(joint_set).items())


def upper_body_column(joint_set: joint_sets_lib.JointSet) -> Column:
  """'UBody': the arm joints of ``joint_set``, pooled (MPII toolkit)."""
  groups = joint_groups(joint_set)
  return Column('UBody', tuple(joint_set.joints[i] for g in UPPER_BODY
                               for i in groups.get(g, ())), pooled=True)


def group_curves(per_joint, joint_set: joint_sets_lib.JointSet, counts=None
                 ) -> dict[str, np.ndarray]:
  """Table columns for PCK values [..., J] (e.g. a [T, J] curve).

  Args:
    per_joint: [..., J] PCK fractions, NaN for joints with no labelled example.
    joint_set: names the joints.
    counts: optional [J] labelled counts (from `metrics.pck_counts`); when given,
      UBody and Mean pool examples over their joints, else they average joints.

  Returns:
    {column: [...] float64} in table order: the groups of `joint_groups`
    (left/right averaged), 'UBody' (`upper_body_column`) for full-body sets,
    and 'Mean' over every grouped joint.
  """
  per_joint = _check_per_joint(per_joint, joint_set)
  counts = _check_counts(counts, joint_set)
  groups = group_columns(joint_set)
  columns = groups
  if is_full_body(joint_set):
    columns += (upper_body_column(joint_set),)
  columns += (Column('Mean', tuple(j for c in groups for j in c.joints),
                     pooled=True),)
  return {c.name: _mean_over(per_joint, [joint_set.index(j) for j in c.joints],
                             counts if c.pooled else None) for c in columns}


def group_scores(per_joint, joint_set: joint_sets_lib.JointSet, counts=None
                 ) -> dict[str, float]:
  """Table row for one threshold: [J] PCK fractions -> {column: float}.

  See `group_curves` for the columns and ``counts``.
  """
  per_joint = _check_per_joint(per_joint, joint_set)
  if per_joint.ndim != 1:
    raise ValueError(f'per_joint must have shape [J], got {per_joint.shape}; '
                     'use group_curves for curves')
  return {k: float(v) for k, v in group_curves(per_joint, joint_set, counts).items()}


def _format_value(value) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '-'
  return f'{100.0 * float(value):.1f}'


def format_table(rows: dict[str, dict[str, float]], title: str = '',
                 columns=None) -> str:
  """Fixed-width text table, one row per method, values as percentages.

  Args:
    rows: {row label (method/model): {column: fraction in [0, 1]}}.
    title: printed above the table when non-empty.
    columns: column order; by default the union of the rows' keys in first-seen
      order (which is table order for rows from `group_scores`).

  Returns:
    The table as a string; a missing or NaN value prints as '-'.
  """
  if columns is None:
    columns = []
    for row in rows.values():
      columns += [c for c in row if c not in columns]
  columns = list(columns)
  label_width = max([len(r) for r in rows] + [len('Method')])
  widths = [max(len(c), 5) for c in columns]
  header = '  '.join(['Method'.ljust(label_width)] +
                     [c.rjust(w) for c, w in zip(columns, widths)])
  lines = [title] if title else []
  lines += [header, '-' * len(header)]
  for label, row in rows.items():
    cells = [_format_value(row.get(c)).rjust(w) for c, w in zip(columns, widths)]
    lines.append('  '.join([label.ljust(label_width)] + cells))
  return '\n'.join(lines)


def per_joint_table(per_joint, joint_set: joint_sets_lib.JointSet,
                    counts=None, title: str = '') -> str:
  """Every joint of ``joint_set`` on its own line: name, group, PCK (and count).

  Args:
    per_joint: [J] PCK fractions.
    joint_set: names the joints.
    counts: optional [J] labelled counts, printed as an extra column.
    title: printed above the table when non-empty.
  """
  per_joint = _check_per_joint(per_joint, joint_set)
  if per_joint.ndim != 1:
    raise ValueError(f'per_joint must have shape [J], got {per_joint.shape}')
  name_width = max(len(j) for j in joint_set.joints + ('Joint',))
  header = f'{"Joint".ljust(name_width)}  {"Group":<8}  {"PCK":>5}'
  if counts is not None:
    header += f'  {"N":>6}'
  lines = [title] if title else []
  lines += [header, '-' * len(header)]
  for j, joint in enumerate(joint_set.joints):
    group = _GROUP_OF_BASE.get(_base_name(joint), '-')
    line = (f'{joint.ljust(name_width)}  {group:<8}  '
            f'{_format_value(per_joint[j]):>5}')
    if counts is not None:
      line += f'  {int(counts[j]):>6d}'
    lines.append(line)
  return '\n'.join(lines)


def _json_float(value) -> float | None:
  value = float(value)
  return None if math.isnan(value) else value


def to_json_dict(per_joint, joint_set: joint_sets_lib.JointSet, counts=None,
                 threshold: float | None = None) -> dict:
  """JSON-ready summary (plain floats, NaN -> None) of one threshold's PCK.

  Returns:
    {'joint_set', 'threshold', 'groups': {column: fraction}, 'per_joint':
    {joint: fraction}, and 'counts': {joint: int} when counts are given}.
  """
  per_joint = _check_per_joint(per_joint, joint_set)
  scores = group_scores(per_joint, joint_set, counts)
  out = {
      'joint_set': joint_set.name,
      'threshold': None if threshold is None else float(threshold),
      'groups': {k: _json_float(v) for k, v in scores.items()},
      'per_joint': {j: _json_float(v) for j, v in zip(joint_set.joints, per_joint)},
  }
  if counts is not None:
    out['counts'] = {j: int(c) for j, c in zip(joint_set.joints, counts)}
  return out


def combine_columns(per_joint, joint_set: joint_sets_lib.JointSet,
                    columns: Sequence[Column], counts=None
                    ) -> dict[str, np.ndarray]:
  """Explicit table columns for PCK values [..., J] (a [J] row or [T, J] curve).

  Unlike `group_curves`, which derives groups from joint names, the caller
  spells out each column: what the official scripts of each dataset do.

  Args:
    per_joint: [..., J] PCK fractions, NaN for joints with no labelled example.
    joint_set: names the joints.
    columns: the columns, in table order.
    counts: [J] labelled counts; required when a column is pooled.

  Returns:
    {column name: [...] float64}, in the order of ``columns``.
  """
  per_joint = _check_per_joint(per_joint, joint_set)
  counts = _check_counts(counts, joint_set)
  out = {}
  for column in columns:
    if column.pooled and counts is None:
      raise ValueError(f'column {column.name!r} pools examples: give counts')
    indices = [joint_set.index(j) for j in column.joints]
    out[column.name] = _mean_over(per_joint, indices,
                                  counts if column.pooled else None)
  return out
