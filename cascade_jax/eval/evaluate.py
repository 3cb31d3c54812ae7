"""Evaluates a checkpoint on the evaluation split: predict, back-project, score, report.

Predictions are decoded from the coarse heat-maps (argmax, optionally
sub-pixel), mapped from model-input pixels back to the original image through
the inverse of the crop matrix, and scored there against the original labels
with torso-normalised PCK (DESIGN section 6).
"""

from __future__ import annotations

import collections
import functools
import json
import os

from absl import logging
from flax import jax_utils
import jax
import ml_collections
import numpy as np

from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.eval import metrics
from cascade_jax.eval import plots
from cascade_jax.eval import prediction_files
from cascade_jax.eval import tables
from cascade_jax.model import build
from cascade_jax.model import spatial
from cascade_jax.train import checkpoint
from cascade_jax.train import steps

# Datasets whose predictions are also written in their official .mat layout.
OFFICIAL_DATASETS = ('flic', 'mpii', 'lsp')
# Prediction methods in the order they are reported (`steps.predict_step`):
# the coarse argmax, the same heat-maps decoded sub-pixel (a quarter cell;
# DARK), the MRF and the cascade.
METHODS = ('coarse', 'coarse_quarter', 'coarse_dark', 'spatial',
           'cascade_no_spatial', 'cascade')


def final_method(predictions) -> str:
  """The model's own answer (plots, official files): the cascade's, or for a
  coarse model its argmax (sub-pixel with eval.subpixel)."""
  return 'cascade' if 'cascade' in predictions else 'coarse'

# Thresholds at which the per-joint table is printed: the paper's Table 3
# threshold and the end of the PCK curve.
TABLE_THRESHOLDS = (0.05, 0.2)


def predict_split(state, source, spec: pipeline.CropSpec, batch_size: int,
                  is_cascade: bool, subpixel: bool = False,
                  fusion: dict | None = None) -> dict[str, np.ndarray]:
  """Predicts every record of ``source`` in order.

  Args:
    state: a host (unreplicated) TrainState.
    source: random-access records.
    spec: the evaluation crop.
    batch_size: examples per forward pass (padded to the device count).
    is_cascade: the model has a fine part.
    subpixel: quarter-cell (coarse) / quarter-pixel (fine) refinement.
    fusion: a cascade's fusion rule (`fusion_options` of the eval config);
      default the paper's fine argmax.

  Returns:
    'coarse', 'coarse_quarter', 'coarse_dark' [N, J, 2] (and 'cascade'
    [N, J, 2] for a cascade, 'spatial' and 'cascade_no_spatial' with a
    spatial model: `steps.predict_step`): predictions in original-image
    pixels; 'scores' [N, J] coarse heat-map peaks ('fine_scores' the fine
    ones); 'gt' [N, J, 2] and 'visible' [N, J], the original labels;
    'input_scale' [N] model-input pixels per original-image pixel.
  """
  num_devices = jax.local_device_count()
  replicated = jax_utils.replicate(state)
  p_predict_step = jax.pmap(
      functools.partial(steps.predict_step, is_cascade=is_cascade,
                        stride=spec.stride, subpixel=subpixel,
                        **(fusion or {})),
      axis_name=steps.AXIS)
  loader = pipeline.make_loader(source, spec, batch_size, train=False, seed=0,
                                shard_by_process=False)
  outputs = collections.defaultdict(list)
  for batch in loader:
    size = len(batch['image'])
    padded = -size % num_devices
    inputs = {k: batch[k] for k in ('image', 'torso') if k in batch}
    if padded:  # repeat the last example; its outputs are cut off below
      inputs = {k: np.concatenate([v, np.repeat(v[-1:], padded, 0)])
                for k, v in inputs.items()}
    predictions = p_predict_step(replicated, steps.shard(inputs, num_devices))
    for name, value in predictions.items():
      value = np.asarray(value).reshape((-1,) + value.shape[2:])[:size]
      if not name.endswith('scores'):  # joints: input -> original image
        value = _to_image(batch['crop_to_image'], value)
      outputs[name].append(value)
    outputs['gt'].append(batch['image_joints'])
    outputs['visible'].append(batch['image_visible'])
    outputs['input_scale'].append(
        1.0 / np.sqrt(np.abs(np.linalg.det(batch['crop_to_image'][:, :2, :2]))))
  if not outputs:
    raise ValueError('the evaluation split is empty')
  return {k: np.concatenate(v) for k, v in outputs.items()}


def _to_image(crop_to_image: np.ndarray, joints: np.ndarray) -> np.ndarray:
  """[B, 3, 3] matrices applied to [B, J, 2] input-pixel joints."""
  return (np.einsum('bij,bkj->bki', crop_to_image[:, :2, :2], joints)
          + crop_to_image[:, None, :2, 2])


def fusion_options(eval_config: ml_collections.ConfigDict) -> dict:
  """`steps.predict_step`'s fusion arguments from ``config.eval``."""
  return {'fusion': eval_config.get('fusion', 'fine'),
          'fine_min_peak': eval_config.get('fine_min_peak', 0.0),
          'cell_margin': eval_config.get('cell_margin', 0.0)}


def score(predictions, method, joint_set, thresholds) -> dict:
  """PCK curve [T, J] and AUC of ``predictions[method]`` (`predict_split`)."""
  norm = metrics.torso_size(predictions['gt'], joint_set)
  labelled = predictions['visible'] & (norm > 0)[:, None]
  curve = metrics.pck(predictions[method], predictions['gt'], labelled,
                      np.where(norm > 0, norm, 1.0), thresholds)
  return {'thresholds': thresholds, 'curve': curve,
          'auc': metrics.pck_curve_auc(thresholds, curve),
          'unusable_torso': int(np.sum(norm <= 0))}


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Evaluates the latest checkpoint of ``workdir``; prints and writes results.

  A cascade is scored twice, on its coarse predictions and on its final
  (fine) ones; with a spatial model also on the MRF's argmax and on the fine
  model at the coarse argmax (the same parameters without the MRF). Writes
  ``workdir``/eval/results.json, pck_curves.png and predictions.npz, and
  returns the results dict.
  """
  source, joint_set = datasets.load_split(config.data, config.data.eval_split)
  model = build.build_model(
      config.model, joint_set.num_joints,
      spatial.build(config, joint_set, initial_kernels=False))
  is_cascade = build.is_cascade(model)
  spec = pipeline.crop_spec(config, joint_set)
  state = checkpoint.restore_latest_state(workdir, config, model)
  step = int(state.step)
  logging.info('evaluating step %d of %s on %d %s examples', step, workdir,
               len(source), config.data.eval_split)

  predictions = predict_split(state, source, spec, config.eval.batch_size,
                              is_cascade, config.eval.subpixel,
                              fusion_options(config.eval))
  thresholds = np.linspace(0.0, config.eval.max_threshold,
                           config.eval.num_thresholds)
  methods = tuple(m for m in METHODS if m in predictions)
  final = final_method(predictions)
  scored = {m: score(predictions, m, joint_set, thresholds) for m in methods}
  report = _report(scored, joint_set, thresholds, step, final)
  print(report['text'])

  out_dir = os.path.join(workdir, 'eval')
  os.makedirs(out_dir, exist_ok=True)
  title = (f'{config.data.name}/{config.data.builder_config} '
           f'{config.data.eval_split}, step {step}')
  curves_png = plots.plot_per_joint_curves(
      thresholds, scored[final]['curve'], joint_set,
      os.path.join(out_dir, 'pck_curves.png'), title=f'{final}: {title}')
  written = [results_path := os.path.join(out_dir, 'results.json'),
             str(curves_png)]
  if is_cascade:
    written.append(str(plots.plot_pck_curves(
        thresholds, {m: tables.group_curves(scored[m]['curve'], joint_set)['Mean'] for m in methods},
        os.path.join(out_dir, 'pck_coarse_vs_cascade.png'),
        title=f'Mean PCK: {title}')))
  np.savez(os.path.join(out_dir, 'predictions.npz'), **predictions)
  written.append(os.path.join(out_dir, 'predictions.npz'))
  if config.data.name in OFFICIAL_DATASETS:  # for other toolkits to score
    official = os.path.join(out_dir, f'{config.data.name}_predictions.mat')
    prediction_files.save_official_predictions(
        official, predictions[final], config.data.name)
    written.append(official)
  with open(results_path, 'w') as f:
    json.dump(report['json'], f, indent=2)
  print('wrote ' + ', '.join(written))
  return report['json']


def _report(scored, joint_set, thresholds, step, final_name) -> dict:
  """The printed tables and the JSON results of each method's `score`."""
  rows, results = {}, {}
  for method, method_scores in scored.items():
    curve = method_scores['curve']
    tables_json = {}
    for threshold in TABLE_THRESHOLDS:
      t = int(np.argmin(np.abs(thresholds - threshold)))
      rows[f'{method} PCK@{thresholds[t]:.2f}'] = tables.group_scores(
          curve[t], joint_set)
      tables_json[f'{thresholds[t]:.2f}'] = tables.to_json_dict(
          curve[t], joint_set, threshold=thresholds[t])
    results[method] = {
        'pck_curve': {joint: curve[:, j].tolist()
                      for j, joint in enumerate(joint_set.joints)},
        'tables': tables_json,
        'mean_pck': {k: v['groups']['Mean'] for k, v in tables_json.items()},
        'auc': {joint: float(a) for joint, a in zip(joint_set.joints,
                                                     method_scores['auc'])},
    }
  final = thresholds[-1]
  text = '\n\n'.join([
      tables.format_table(rows, title=f'Step {step}: PCK (torso-normalised)'),
      tables.per_joint_table(scored[final_name]['curve'][-1], joint_set,
                             title=f'Per joint, {final_name}, '
                             f'PCK@{final:.2f}'),
      f'AUC of PCK over [0, {final:.2f}], mean over joints: ' + ', '.join(
          f'{m} {100 * np.nanmean(v["auc"]):.1f}' for m, v in scored.items())])
  return {'text': text, 'json': {
      'step': step,
      'joint_set': joint_set.name,
      'thresholds': thresholds.tolist(),
      'methods': results,
      'unusable_torso': next(iter(scored.values()))['unusable_torso'],
  }}
