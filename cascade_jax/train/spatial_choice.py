"""Which joints the MRF answers for: chosen on held-out images (issue 15).

The spatial stage optimises E3, a cross-entropy over locations, not the
argmax's accuracy: a joint can end it less accurate than its coarse heat-map
while the mean gains (BUILD_NOTES.md, issue 15). So at the end of the stage
the MRF's argmax and the coarse argmax are scored on ``train.
spatial_choice_split``, images that neither stage trained on (the configs
hold them out of ``data.train_split``), and the MRF keeps only the joints
where it is correct more often than the coarse model by more than chance (a
one-sided sign test at ``train.spatial_choice_level``); for the others it
steps aside (`SpatialModel`'s 'active' = 0) and the joint's answer, and the
fine model's window, is the coarse argmax exactly.
"""

from __future__ import annotations

import json
import math
import os

from absl import logging
import jax
import ml_collections
import numpy as np

from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.eval import evaluate

# The torso-PCK threshold the choice compares at (the bar, and the
# end of every PCK table).
THRESHOLD = 0.2
# The sign test's level below which the MRF's gain on a joint is trusted.
DEFAULT_LEVEL = 0.1
# Where the choice is recorded, in the workdir.
RESULT_FILE = 'spatial_choice.json'


def with_active(params: dict, active) -> dict:
  """``params`` with the spatial model's 'active' [J] replaced."""
  spatial = dict(params['spatial'])
  spatial['active'] = np.asarray(active, np.float32).reshape(
      np.shape(spatial['active']))
  return dict(params, spatial=spatial)


def sign_test(better: int, worse: int) -> float:
  """One-sided sign test: P(X >= better) for X ~ Binomial(better + worse,
  1/2), the chance of at least ``better`` wins among the examples where
  exactly one of two methods is right, if neither were better."""
  total = better + worse
  return sum(math.comb(total, k) for k in range(better, total + 1)) / 2**total


def compare(predictions: dict, joint_set, level: float) -> dict:
  """Per joint: the fraction of correct 'coarse' and 'spatial' answers
  (torso PCK at ``THRESHOLD``, `evaluate.correct_joints`), the examples
  only the MRF gets right ('better') and only the coarse model ('worse'),
  the sign test's p-value, and whether the MRF is kept: more right than
  the coarse model and p <= ``level``. A joint whose difference could be
  chance steps aside; noise in the choice would otherwise cost a joint group
  a few examples on new images (BUILD_NOTES.md, issue 15)."""
  coarse = evaluate.correct_joints(predictions, 'coarse', joint_set, THRESHOLD)
  mrf = evaluate.correct_joints(predictions, 'spatial', joint_set, THRESHOLD)
  _, labelled = evaluate.torso_norm(predictions, joint_set)
  counts = labelled.sum(axis=0)
  better = np.sum(mrf & ~coarse, axis=0)
  worse = np.sum(coarse & ~mrf, axis=0)
  p_values = [sign_test(int(b), int(w)) for b, w in zip(better, worse)]
  fraction = lambda correct: [float(c / n) if n else None
                              for c, n in zip(correct.sum(axis=0), counts)]
  return {'joints': list(joint_set.joints), 'threshold': THRESHOLD,
          'level': level, 'counts': counts.tolist(),
          'coarse': fraction(coarse), 'spatial': fraction(mrf),
          'better': better.tolist(), 'worse': worse.tolist(),
          'p_value': p_values,
          'active': [bool(b > w and p <= level)
                     for b, w, p in zip(better, worse, p_values)]}


def choose(state, config: ml_collections.ConfigDict, spec: pipeline.CropSpec,
           workdir: str):
  """``state`` with the MRF active only where it helps on the choice split.

  Predicts ``config.train.spatial_choice_split`` with the MRF active for
  every joint, compares (`compare`), logs the table and writes it to
  ``workdir``/spatial_choice.json. Every process predicts the whole split,
  so all make the same choice.

  Returns:
    (state, the comparison dict).
  """
  split = config.train.spatial_choice_split
  source, joint_set = datasets.load_split(config.data, split)
  state = state.replace(params=with_active(
      state.params, np.ones(joint_set.num_joints)))
  predictions = evaluate.predict_split(state, source, spec,
                                       config.eval.batch_size, is_cascade=True,
                                       subpixel=config.eval.subpixel)
  result = compare(predictions, joint_set,
                   config.train.get('spatial_choice_level', DEFAULT_LEVEL))
  result['split'] = split
  result['examples'] = len(source)
  percent = lambda v: ' n/a ' if v is None else f'{100 * v:5.1f}'
  lines = [f'{name:>12s}  coarse {percent(c)}  MRF {percent(m)}  '
           f'p {p:.3f}  {"MRF" if keep else "coarse (the MRF steps aside)"}'
           for name, c, m, p, keep in zip(
               result['joints'], result['coarse'], result['spatial'],
               result['p_value'], result['active'])]
  logging.info('spatial choice on %s (%d images), PCK@%.2g per joint:\n%s',
               split, len(source), THRESHOLD, '\n'.join(lines))
  if jax.process_index() == 0:  # every process chose the same, from all data
    with open(os.path.join(workdir, RESULT_FILE), 'w') as f:
      json.dump(result, f, indent=2)
  return state.replace(params=with_active(state.params,
                                          result['active'])), result
