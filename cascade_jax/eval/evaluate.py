"""Evaluates a checkpoint on the evaluation split: predict, back-project, score, report.

Predictions are decoded from the coarse heat-maps (argmax, optionally
sub-pixel), mapped from model-input pixels back to the original image through
the inverse of the crop matrix, and scored there against the original labels
with torso-normalised PCK (DESIGN section 6).
"""

from __future__ import annotations

import json
import os

from absl import logging
from flax import jax_utils
import jax
import ml_collections
import numpy as np

from cascade_jax import heatmaps
from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.eval import metrics
from cascade_jax.eval import plots
from cascade_jax.eval import tables
from cascade_jax.model import build
from cascade_jax.train import checkpoint
from cascade_jax.train import state as state_lib
from cascade_jax.train import steps

# Thresholds at which the per-joint table is printed: the paper's Table 3
# threshold and the end of the PCK curve.
TABLE_THRESHOLDS = (0.05, 0.2)


def predict_split(state, source, spec: pipeline.CropSpec, batch_size: int,
                  subpixel: bool = False) -> dict[str, np.ndarray]:
  """Predicts every record of ``source`` in order.

  Args:
    state: a host (unreplicated) TrainState.
    source: random-access records.
    spec: the evaluation crop.
    batch_size: examples per forward pass (padded to the device count).
    subpixel: quarter-cell refinement of the argmax.

  Returns:
    'pred' [N, J, 2] in original-image pixels, 'scores' [N, J] heat-map peaks,
    'gt' [N, J, 2] and 'visible' [N, J], the original labels.
  """
  num_devices = jax.local_device_count()
  replicated = jax_utils.replicate(state)
  loader = pipeline.make_loader(source, spec, batch_size, train=False, seed=0,
                                shard_by_process=False)
  outputs = {'pred': [], 'scores': [], 'gt': [], 'visible': []}
  for batch in loader:
    size = len(batch['image'])
    padded = -size % num_devices
    images = batch['image']
    if padded:  # repeat the last image; its outputs are cut off below
      images = np.concatenate([images, np.repeat(images[-1:], padded, 0)])
    maps = steps.p_predict_step(replicated,
                                steps.shard({'image': images}, num_devices))
    maps = np.asarray(maps).reshape((-1,) + maps.shape[2:])[:size]
    joints, scores = heatmaps.decode(maps, spec.stride, subpixel)
    outputs['pred'].append(_to_image(batch['crop_to_image'], joints))
    outputs['scores'].append(scores)
    outputs['gt'].append(batch['image_joints'])
    outputs['visible'].append(batch['image_visible'])
  if not outputs['pred']:
    raise ValueError('the evaluation split is empty')
  return {k: np.concatenate(v) for k, v in outputs.items()}


def _to_image(crop_to_image: np.ndarray, joints: np.ndarray) -> np.ndarray:
  """[B, 3, 3] matrices applied to [B, J, 2] input-pixel joints."""
  return (np.einsum('bij,bkj->bki', crop_to_image[:, :2, :2], joints)
          + crop_to_image[:, None, :2, 2])


def score(predictions, joint_set, thresholds) -> dict:
  """PCK curves, table rows and AUC for predictions from `predict_split`."""
  norm = metrics.torso_size(predictions['gt'], joint_set)
  labelled = predictions['visible'] & (norm > 0)[:, None]
  curve = metrics.pck(predictions['pred'], predictions['gt'], labelled,
                      np.where(norm > 0, norm, 1.0), thresholds)
  return {'thresholds': thresholds, 'curve': curve,
          'auc': metrics.pck_curve_auc(thresholds, curve),
          'unusable_torso': int(np.sum(norm <= 0))}


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Evaluates the latest checkpoint of ``workdir``; prints and writes results.

  Writes ``workdir``/eval/results.json, pck_curves.png and predictions.npz, and
  returns the results dict.
  """
  source, joint_set = datasets.load_split(config.data, config.data.eval_split)
  model = build.build_model(config.model, joint_set.num_joints)
  spec = pipeline.crop_spec(config, joint_set)
  width, height = spec.input_size
  target = state_lib.create_train_state(model, config.train,
                                        (1, height, width, 3),
                                        jax.random.PRNGKey(0))
  manager = checkpoint.make_manager(workdir)
  state = checkpoint.restore(manager, target)
  step = int(state.step)
  logging.info('evaluating step %d of %s on %d test examples', step, workdir,
               len(source))

  predictions = predict_split(state, source, spec, config.eval.batch_size,
                              config.eval.subpixel)
  thresholds = np.linspace(0.0, config.eval.max_threshold,
                           config.eval.num_thresholds)
  scored = score(predictions, joint_set, thresholds)
  report = _report(scored, joint_set, step)
  print(report['text'])

  out_dir = os.path.join(workdir, 'eval')
  os.makedirs(out_dir, exist_ok=True)
  curves_png = plots.plot_per_joint_curves(
      thresholds, scored['curve'], joint_set,
      os.path.join(out_dir, 'pck_curves.png'),
      title=f'{config.data.name}/{config.data.builder_config} test, step {step}')
  np.savez(os.path.join(out_dir, 'predictions.npz'), **predictions)
  results_path = os.path.join(out_dir, 'results.json')
  with open(results_path, 'w') as f:
    json.dump(report['json'], f, indent=2)
  print(f'wrote {results_path}, {curves_png} and predictions.npz')
  return report['json']


def _report(scored, joint_set, step) -> dict:
  """The printed tables and the JSON results of `score`'s output."""
  thresholds, curve = scored['thresholds'], scored['curve']
  rows, json_rows = {}, {}
  for threshold in TABLE_THRESHOLDS:
    t = int(np.argmin(np.abs(thresholds - threshold)))
    rows[f'PCK@{thresholds[t]:.2f}'] = tables.group_scores(curve[t], joint_set)
    json_rows[f'{thresholds[t]:.2f}'] = tables.to_json_dict(
        curve[t], joint_set, threshold=thresholds[t])
  final = thresholds[-1]
  text = '\n\n'.join([
      tables.format_table(rows, title=f'Step {step}: PCK (torso-normalised)'),
      tables.per_joint_table(curve[-1], joint_set,
                             title=f'Per joint, PCK@{final:.2f}'),
      f'AUC of PCK over [0, {final:.2f}], mean over joints: '
      f'{100 * np.nanmean(scored["auc"]):.1f}'])
  results = {
      'step': step,
      'joint_set': joint_set.name,
      'thresholds': thresholds.tolist(),
      'pck_curve': {joint: curve[:, j].tolist()
                    for j, joint in enumerate(joint_set.joints)},
      'tables': json_rows,
      'mean_pck': {k: v['Mean'] for k, v in rows.items()},
      'auc': {joint: float(a) for joint, a in zip(joint_set.joints,
                                                   scored['auc'])},
      'unusable_torso': scored['unusable_torso'],
  }
  return {'text': text, 'json': results}
