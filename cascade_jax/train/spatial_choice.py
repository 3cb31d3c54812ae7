"""Which joints the MRF answers for: chosen on held-out images (issue 15).

The spatial stage optimises E3, a cross-entropy over locations, not the
argmax's accuracy: a joint can end it less accurate than its coarse heat-map
while the mean gains (BUILD_NOTES.md, issue 15). So the MRF's answers are
scored on ``train.spatial_choice_split``, images that no stage trained on
(the configs hold them out of ``data.train_split``), twice:

  at the end of the spatial stage (`choose_joints`): the MRF's argmax
    against the coarse argmax;
  at the end of training (`confirm_joints`), for the joints still kept: the
    cascade cropped at the MRF's argmax against the cascade cropped at the
    coarse argmax, now that the fine model exists.

A joint stays with the MRF only where it is correct more often than the
alternative by more than chance (a one-sided sign test at
``train.spatial_choice_level``) in both; for the others the MRF steps aside
(`SpatialModel`'s 'active' = 0) and the joint's answer, the fine model's
window and the fusion's prior are the coarse model's exactly.
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
from cascade_jax.train import checkpoint

# The torso-PCK threshold the choice compares at (the bar, and the
# end of every PCK table).
THRESHOLD = 0.2
# The sign test's level below which the MRF's gain on a joint is trusted.
DEFAULT_LEVEL = 0.1
# Where the choice is recorded, in the workdir: one section per test
# ('spatial_stage', 'end_of_training') and the joints kept ('active').
RESULT_FILE = 'spatial_choice.json'
# The two tests: (the section of RESULT_FILE, the predictions with the MRF,
# those without it).
SPATIAL_STAGE = ('spatial_stage', 'spatial', 'coarse')
END_OF_TRAINING = ('end_of_training', 'cascade', 'cascade_no_spatial')


def with_active(params: dict, active) -> dict:
  """``params`` with the spatial model's 'active' [J] replaced."""
  spatial = dict(params['spatial'])
  spatial['active'] = np.asarray(active, np.float32).reshape(
      np.shape(spatial['active']))
  return dict(params, spatial=spatial)


def check_held_out(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError, before training, unless ``train.spatial_choice_split``
  can be read and shares no image with a split the model trains on: this
  run's ``data.train_split``, and that of the run it starts from
  (``train.init_from``, when that run used the same dataset). On images the
  model has fitted, the MRF's gain is no estimate of its gain on new ones."""
  choice = config.train.spatial_choice_split
  try:
    datasets.load_split(config.data, choice)
  except ValueError as e:
    raise ValueError(
        f'train.spatial_choice_split={choice!r}, the held-out images the '
        f"MRF's joints are chosen on, cannot be read: {e}") from e
  trained_on = [("this run's data.train_split", config.data.train_split)]
  if config.train.get('init_from'):
    base = checkpoint.restore_config(config.train.init_from).data
    if (base.name, base.get('builder_config')) == (
        config.data.name, config.data.get('builder_config')):
      # Runs saved before data.train_split existed trained on 'train'.
      trained_on.append(('the data.train_split of train.init_from='
                         f'{config.train.init_from!r}',
                         base.get('train_split', 'train')))
  for what, split in trained_on:
    shared = datasets.shared_examples(config.data, split, choice)
    if shared:
      raise ValueError(
          f'train.spatial_choice_split={choice!r} overlaps {split!r}, {what} '
          f"(shared images: {shared}): the MRF's joints must be chosen on "
          'images no stage trained on. Hold them out of the training split '
          "(the FLIC configs train on 'train[400:]', choose on 'train[:400]').")


def sign_test(better: int, worse: int) -> float:
  """One-sided sign test: P(X >= better) for X ~ Binomial(better + worse,
  1/2), the chance of at least ``better`` wins among the examples where
  exactly one of two methods is right, if neither were better."""
  total = better + worse
  return sum(math.comb(total, k) for k in range(better, total + 1)) / 2**total


def compare(predictions: dict, joint_set, level: float,
            method: str = 'spatial', baseline: str = 'coarse') -> dict:
  """Per joint: the fraction of correct ``baseline`` and ``method`` answers
  (torso PCK at ``THRESHOLD``, `evaluate.correct_joints`), the examples
  only ``method`` gets right ('better') and only ``baseline`` ('worse'),
  the sign test's p-value, and whether ``method`` is kept ('active'): more
  right than ``baseline`` and p <= ``level``. A joint whose difference could
  be chance steps aside; noise in the choice would otherwise cost a joint
  group a few examples on new images (BUILD_NOTES.md, issue 15)."""
  base = evaluate.correct_joints(predictions, baseline, joint_set, THRESHOLD)
  new = evaluate.correct_joints(predictions, method, joint_set, THRESHOLD)
  _, labelled = evaluate.torso_norm(predictions, joint_set)
  counts = labelled.sum(axis=0)
  better = np.sum(new & ~base, axis=0)
  worse = np.sum(base & ~new, axis=0)
  p_values = [sign_test(int(b), int(w)) for b, w in zip(better, worse)]
  fraction = lambda correct: [float(c / n) if n else None
                              for c, n in zip(correct.sum(axis=0), counts)]
  return {'joints': list(joint_set.joints), 'threshold': THRESHOLD,
          'level': level, 'method': method, 'baseline': baseline,
          'counts': counts.tolist(),
          baseline: fraction(base), method: fraction(new),
          'better': better.tolist(), 'worse': worse.tolist(),
          'p_value': p_values,
          'active': [bool(b > w and p <= level)
                     for b, w, p in zip(better, worse, p_values)]}


def predict_choice_split(state, config: ml_collections.ConfigDict,
                         spec: pipeline.CropSpec) -> dict:
  """`evaluate.predict_split` of ``train.spatial_choice_split`` with the MRF
  on every joint and the configured fusion: what both tests compare. The
  tests only change 'active', so when both run at one step (a spatial stage
  that ends training) they can share these predictions."""
  source, joint_set = datasets.load_split(config.data,
                                          config.train.spatial_choice_split)
  return evaluate.predict_split(
      state.replace(params=with_active(state.params,
                                       np.ones(joint_set.num_joints))),
      source, spec, config.eval.batch_size, is_cascade=True,
      subpixel=config.eval.subpixel,
      fusion=evaluate.fusion_options(config.eval))


def choose_joints(state, config: ml_collections.ConfigDict,
                  spec: pipeline.CropSpec, workdir: str,
                  predictions: dict | None = None):
  """At the end of the spatial stage: ``state`` with the MRF active where
  its argmax beats the coarse argmax on the choice split (every joint is
  tried; ``predictions``: `predict_choice_split`'s, made here if None).
  Returns (state, the comparison dict)."""
  return _test(state, config, spec, workdir, SPATIAL_STAGE,
               already_kept=None, predictions=predictions)


def confirm_joints(state, config: ml_collections.ConfigDict,
                   spec: pipeline.CropSpec, workdir: str,
                   predictions: dict | None = None):
  """At the end of training: ``state`` with the MRF active only where it
  was and where the cascade at its argmax also beats the cascade at the
  coarse argmax on the choice split. Returns (state, the comparison dict).

  The first test cannot see the fine model, which is trained after it; a
  joint whose MRF answer is better but whose windows do not make the
  cascade better would otherwise cost the cascade (BUILD_NOTES.md).
  """
  kept = np.asarray(state.params['spatial']['active']).reshape(-1) > 0.5
  return _test(state, config, spec, workdir, END_OF_TRAINING,
               already_kept=kept, predictions=predictions)


def _test(state, config, spec, workdir, test, already_kept, predictions):
  """Compares ``test``'s two methods in ``predictions`` (or in
  `predict_choice_split`'s), logs the table, records it in ``workdir``/
  RESULT_FILE, and sets 'active' to the joints kept (among
  ``already_kept``, if given). Every process predicts the whole split, so
  all make the same choice."""
  section, method, baseline = test
  split = config.train.spatial_choice_split
  if predictions is None:
    predictions = predict_choice_split(state, config, spec)
  joint_set = datasets.joint_set(config.data)
  result = compare(predictions, joint_set,
                   config.train.get('spatial_choice_level', DEFAULT_LEVEL),
                   method, baseline)
  if already_kept is not None:
    result['active'] = [bool(a and k) for a, k in zip(result['active'],
                                                      already_kept)]
  result['split'] = split
  result['examples'] = len(predictions['gt'])
  percent = lambda v: ' n/a ' if v is None else f'{100 * v:5.1f}'
  lines = [f'{name:>12s}  {baseline} {percent(b)}  {method} {percent(m)}  '
           f'p {p:.3f}  {"MRF" if keep else "coarse (the MRF steps aside)"}'
           for name, b, m, p, keep in zip(
               result['joints'], result[baseline], result[method],
               result['p_value'], result['active'])]
  logging.info('spatial choice (%s) on %s (%d images), PCK@%.2g per joint:'
               '\n%s', section, split, result['examples'], THRESHOLD,
               '\n'.join(lines))
  if jax.process_index() == 0:  # every process chose the same, from all data
    _record(workdir, section, result)
  return state.replace(params=with_active(state.params,
                                          result['active'])), result


def _record(workdir: str, section: str, result: dict):
  """Adds ``section`` to RESULT_FILE (a later test replaces a section of an
  earlier run of the same test) and sets its 'active' to the latest choice;
  written to a temporary file and renamed, so a reader never sees half."""
  path = os.path.join(workdir, RESULT_FILE)
  record = {}
  if os.path.exists(path):
    with open(path) as f:
      record = json.load(f)
  if section == SPATIAL_STAGE[0]:  # a new choice: the confirmation is void
    record.pop(END_OF_TRAINING[0], None)
  record[section] = result
  record['active'] = result['active']
  with open(path + '.tmp', 'w') as f:
    json.dump(record, f, indent=2)
  os.replace(path + '.tmp', path)
