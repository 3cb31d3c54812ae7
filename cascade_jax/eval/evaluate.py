"""Evaluates a checkpoint on the evaluation split: predict, back-project, score, report.

Predictions are decoded from the coarse heat-maps (argmax, optionally
sub-pixel), mapped from model-input pixels back to the original image through
the inverse of the crop matrix, and scored there against the original labels.

Every split gets torso-normalised PCK (`score`, DESIGN section 6), which
leaves out and counts the people whose two torso joints are not both
labelled. The real datasets also get their official figures
(`official_scores`): FLIC PCK@0.05 as paper Table 3 (observer-centric, see
`official.flic_pck_person_centric`), MPII PCKh@0.5 from the head boxes as
paper Table 4 under both head conventions, LSP PCK@0.2; for them the torso
table is printed as a separately named extra.
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
from cascade_jax.eval import official
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

# Title prefix of the torso-PCK tables where official ones come first.
EXTRA = 'extra, not the paper\'s metric: '
# Thresholds at which the per-joint table is printed: the paper's Table 3
# threshold and the end of the PCK curve.
TABLE_THRESHOLDS = (0.05, 0.2)


def predict_split(state, source, spec: pipeline.CropSpec, batch_size: int,
                  is_cascade: bool, subpixel: bool = False,
                  fusion: dict | None = None, flip: bool = False
                  ) -> dict[str, np.ndarray]:
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
    flip: run the flip test (`inference.predict`), joints swapped by the
      crop spec's ``flip_permutation``.

  Returns:
    'coarse', 'coarse_quarter', 'coarse_dark' [N, J, 2] (and 'cascade'
    [N, J, 2] for a cascade, 'spatial' and 'cascade_no_spatial' with a
    spatial model: `steps.predict_step`): predictions in original-image
    pixels; 'scores' [N, J] coarse heat-map peaks ('fine_scores' the fine
    ones); 'gt' [N, J, 2] and 'visible' [N, J], the original labels;
    'input_scale' [N] model-input pixels per original-image pixel;
    'head_boxes' [N, 2, 2] ((x1, y1), (x2, y2)) when the records have a
    'head_box' (MPII).
  """
  num_devices = jax.local_device_count()
  replicated = jax_utils.replicate(state)
  p_predict_step = jax.pmap(
      functools.partial(steps.predict_step, is_cascade=is_cascade,
                        stride=spec.stride, subpixel=subpixel,
                        flip_permutation=spec.flip_permutation if flip else None,
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
  outputs = {k: np.concatenate(v) for k, v in outputs.items()}
  if 'head_box' in source[0]:  # the loader reads the records in order
    outputs['head_boxes'] = np.stack([
        np.asarray(source[i]['head_box'], np.float64).reshape(2, 2)
        for i in range(len(source))])
  return outputs


def _to_image(crop_to_image: np.ndarray, joints: np.ndarray) -> np.ndarray:
  """[B, 3, 3] matrices applied to [B, J, 2] input-pixel joints."""
  return (np.einsum('bij,bkj->bki', crop_to_image[:, :2, :2], joints)
          + crop_to_image[:, None, :2, 2])


def fusion_options(eval_config: ml_collections.ConfigDict) -> dict:
  """`steps.predict_step`'s fusion arguments from ``config.eval``."""
  return {'fusion': eval_config.get('fusion', 'fine'),
          'fine_min_peak': eval_config.get('fine_min_peak', 0.0),
          'cell_margin': eval_config.get('cell_margin', 0.0),
          'coarse_power': eval_config.get('coarse_power', 1.0)}


def score(predictions, method, joint_set, thresholds) -> dict:
  """Torso PCK of ``predictions[method]`` (`predict_split`): every path's one.

  People whose torso joints are not both labelled (`metrics.torso_size`)
  are left out and counted in 'unusable_torso'.

  Returns:
    'thresholds' [T]; 'curve' [T, J] fractions; 'counts' [J] labelled joints
    scored; 'auc' [J]; 'norm' [N] torso lengths, NaN where left out;
    'unusable_torso', the number left out.
  """
  norm, labelled = torso_norm(predictions, joint_set)
  usable = np.isfinite(norm)
  correct, counts = metrics.pck_counts(
      predictions[method], predictions['gt'], labelled,
      np.where(usable, norm, 1.0), thresholds)
  with np.errstate(invalid='ignore', divide='ignore'):
    curve = np.where(counts > 0, correct / np.maximum(counts, 1), np.nan)
  return {'thresholds': thresholds, 'curve': curve, 'counts': counts,
          'auc': metrics.pck_curve_auc(thresholds, curve), 'norm': norm,
          'unusable_torso': int(np.sum(~usable))}


def torso_norm(predictions, joint_set) -> tuple[np.ndarray, np.ndarray]:
  """(norm [N] torso lengths, NaN where unusable; labelled [N, J]: the
  visible joints of the people with a usable torso), for `score`."""
  norm = metrics.torso_size(predictions['gt'], joint_set,
                            predictions['visible'])
  return norm, predictions['visible'] & np.isfinite(norm)[:, None]


def correct_joints(predictions, method, joint_set, threshold: float
                   ) -> np.ndarray:
  """[N, J] bool: the joints of ``predictions[method]`` that `score` counts
  as correct at torso PCK ``threshold``, example by example."""
  norm, labelled = torso_norm(predictions, joint_set)
  return metrics.correct_joints(
      predictions[method], predictions['gt'], labelled,
      np.where(np.isfinite(norm), norm, 1.0), [threshold])[0]


def official_scores(predictions, method, dataset: str
                    ) -> list[official.OfficialScores]:
  """The official figures of ``dataset`` for ``predictions[method]``.

  FLIC: paper Table 3, our person-centric predictions made observer-centric
  for the official scorer (`official.flic_pck_person_centric`). MPII: PCKh
  from the records' head boxes, official Matlab and HRNet conventions. LSP:
  Pishchulin's PCK. Other datasets (synthetic): [].
  """
  pred, gt, visible = (predictions[k] for k in (method, 'gt', 'visible'))
  if dataset == 'flic':
    return [official.flic_pck_person_centric(pred, gt, visible)]
  if dataset == 'lsp':
    return [official.lsp_pck(pred, gt, visible)]
  if dataset != 'mpii':
    return []
  boxes = predictions.get('head_boxes')
  sizes = None if boxes is None else official.mpii_head_sizes(boxes)
  if sizes is None or not np.all(sizes > 0):
    missing = ('no head boxes' if sizes is None else 'no head box for '
               f'examples {np.flatnonzero(~(sizes > 0))[:10].tolist()}')
    raise ValueError(
        f'MPII PCKh needs the head box of every evaluated person, but the '
        f'evaluation split has {missing}: rebuild the MPII dataset with this '
        'version (delete its TFDS folder mpii_pose, then python -m '
        'launch.build_dataset --config=configs/mpii.py)')
  return [official.mpii_pckh(pred, gt, visible, boxes, c)
          for c in official.MPII_CONVENTIONS]


def official_file_predictions(pred, dataset: str) -> np.ndarray:
  """[N, J, 2] predictions in the convention of ``dataset``'s official
  scorer, for the official .mat file: FLIC's observer-centric (as
  `official_scores` scores them), the others as they are."""
  if dataset == 'flic':
    return official.flic_predictions_observer_centric(pred)[0]
  return np.asarray(pred)


def require_checkpoint(workdir: str) -> None:
  """Raises FileNotFoundError, saying what to do, unless ``workdir`` holds a
  checkpoint (checked before any data are read or built)."""
  directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
  steps_saved = ([name for name in os.listdir(directory) if name.isdigit()]
                 if os.path.isdir(directory) else [])
  if not steps_saved:
    raise FileNotFoundError(
        f'no checkpoint in {directory}: train first (python -m launch.train '
        f'--config=... --workdir={workdir}), or point --workdir at a '
        'training run')


def eval_dir(workdir: str, flip: bool = False) -> str:
  """Where `evaluate_checkpoint` writes: ``workdir``/eval, or
  ``workdir``/eval_flip for the flip test (the plain evaluation stays)."""
  return os.path.join(workdir, 'eval_flip' if flip else 'eval')


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str,
                        flip: bool = False) -> dict:
  """Evaluates the latest checkpoint of ``workdir``; prints and writes results.

  A cascade is scored twice, on its coarse predictions and on its final
  (fine) ones; with a spatial model also on the MRF's argmax and on the fine
  model at the coarse argmax (the same parameters without the MRF). With
  ``flip`` every prediction is the flip test's (`inference.predict`). Writes
  ``workdir``/eval/results.json, pck_curves.png and predictions.npz
  (``workdir``/eval_flip/ with ``flip``, so that the plain evaluation the
  report reads stays), and returns the results dict.
  """
  require_checkpoint(workdir)
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
                              fusion_options(config.eval), flip)
  thresholds = np.linspace(0.0, config.eval.max_threshold,
                           config.eval.num_thresholds)
  methods = tuple(m for m in METHODS if m in predictions)
  final = final_method(predictions)
  scored = {m: score(predictions, m, joint_set, thresholds) for m in methods}
  officials = {m: official_scores(predictions, m, config.data.name)
               for m in methods}
  report = _report(scored, officials, joint_set, thresholds, step, final)
  report['json']['flip'] = flip
  if 'spatial' in state.params:  # the joints `spatial_choice` left coarse
    aside = [name for name, active in zip(
        joint_set.joints, np.asarray(state.params['spatial']['active']))
             if active < 0.5]
    report['json']['mrf_steps_aside'] = aside
    report['text'] += ('\nThe MRF steps aside (its answer is the coarse '
                       f'argmax) for: {", ".join(aside) or "no joint"}.')
  if flip:
    report['text'] = ('Flip test: every prediction averages the heat-maps of '
                      'the image and its mirror.\n\n' + report['text'])
  print(report['text'])

  out_dir = eval_dir(workdir, flip)
  os.makedirs(out_dir, exist_ok=True)
  title = (f'{config.data.name}/{config.data.builder_config} '
           f'{config.data.eval_split}, step {step}' + (', flip test' if flip
                                                       else ''))
  curves_png = plots.plot_per_joint_curves(
      thresholds, scored[final]['curve'], joint_set,
      os.path.join(out_dir, 'pck_curves.png'), title=f'{final}: {title}')
  written = [results_path := os.path.join(out_dir, 'results.json'),
             str(curves_png)]
  if is_cascade:
    written.append(str(plots.plot_pck_curves(
        thresholds, {m: tables.group_curves(
            scored[m]['curve'], joint_set, scored[m]['counts'])['Mean']
                     for m in methods},
        os.path.join(out_dir, 'pck_coarse_vs_cascade.png'),
        title=f'Mean PCK: {title}')))
  np.savez(os.path.join(out_dir, 'predictions.npz'), **predictions)
  written.append(os.path.join(out_dir, 'predictions.npz'))
  if config.data.name in OFFICIAL_DATASETS:  # for other toolkits to score
    official_path = os.path.join(out_dir,
                                 f'{config.data.name}_predictions.mat')
    prediction_files.save_official_predictions(
        official_path, official_file_predictions(predictions[final],
                                                 config.data.name),
        config.data.name)
    written.append(official_path)
  with open(results_path, 'w') as f:
    json.dump(report['json'], f, indent=2)
  print('wrote ' + ', '.join(written))
  return report['json']


def _report(scored, officials, joint_set, thresholds, step, final_name
            ) -> dict:
  """The printed tables and the JSON results of each method's `score` and
  `official_scores` (official tables first, torso PCK then as an extra)."""
  rows, results = {}, {}
  for method, method_scores in scored.items():
    curve, counts = method_scores['curve'], method_scores['counts']
    tables_json = {}
    for threshold in TABLE_THRESHOLDS:
      t = int(np.argmin(np.abs(thresholds - threshold)))
      rows[f'{method} PCK@{thresholds[t]:.2f}'] = tables.group_scores(
          curve[t], joint_set, counts)
      tables_json[f'{thresholds[t]:.2f}'] = tables.to_json_dict(
          curve[t], joint_set, counts, threshold=thresholds[t])
    results[method] = {
        'pck_curve': {joint: curve[:, j].tolist()
                      for j, joint in enumerate(joint_set.joints)},
        'tables': tables_json,
        'mean_pck': {k: v['groups']['Mean'] for k, v in tables_json.items()},
        'auc': {joint: float(a) for joint, a in zip(joint_set.joints,
                                                     method_scores['auc'])},
        'official': {s.convention: s.to_json_dict()
                     for s in officials[method]},
    }
  final = thresholds[-1]
  left_out = next(iter(scored.values()))['unusable_torso']
  num = len(next(iter(scored.values()))['norm'])
  official_text = official_tables(officials, f'Step {step}: ')
  torso_title = (f'Step {step}: ' + (EXTRA if official_text else '') +
                 'PCK (torso-normalised, ||l_shoulder - r_hip||; '
                 'person-centric labels as trained); '
                 f'{left_out} of {num} people left out: torso joints not both '
                 'labelled')
  text = '\n\n'.join(([official_text] if official_text else []) + [
      tables.format_table(rows, title=torso_title),
      tables.per_joint_table(scored[final_name]['curve'][-1], joint_set,
                             scored[final_name]['counts'],
                             title=f'Per joint, {final_name}, torso '
                             f'PCK@{final:.2f}'),
      f'AUC of torso PCK over [0, {final:.2f}], mean over joints: ' +
      ', '.join(f'{m} {_percent_mean(v["auc"])}' for m, v in scored.items())])
  return {'text': text, 'json': {
      'step': step,
      'joint_set': joint_set.name,
      'thresholds': thresholds.tolist(),
      'methods': results,
      'unusable_torso': left_out,
  }}


def _percent_mean(values) -> str:
  """Mean of the finite values as a percentage; '-' when there are none."""
  values = np.asarray(values)[np.isfinite(values)]
  return f'{100 * values.mean():.1f}' if values.size else '-'


def official_tables(officials: dict[str, list], prefix: str = '') -> str:
  """One text table per official convention, one row per method.

  Args:
    officials: {method: `official_scores`}; empty lists give ''.
    prefix: put before each title (e.g. the step).
  """
  blocks = []
  methods = [m for m, s in officials.items() if s]
  if not methods:
    return ''
  for k, first in enumerate(officials[methods[0]]):
    rows = {m: dict(officials[m][k].columns, **officials[m][k].extras)
            for m in methods}
    blocks.append('\n'.join(
        [tables.format_table(rows, title=prefix + official_title(first))] +
        [f'  note: {n}' for n in official_notes(officials, k)]))
  return '\n\n'.join(blocks)


def official_notes(officials: dict[str, list], k: int) -> list[str]:
  """The notes of convention ``k`` of every method, each once; a note that
  not every method shares names its method."""
  methods = [m for m, s in officials.items() if s]
  notes = []
  for m in methods:
    for note in officials[m][k].notes:
      shared = all(note in officials[o][k].notes for o in methods)
      line = note if shared else f'{m}: {note}'
      notes += [] if line in notes else [line]
  return notes


def official_title(scores: official.OfficialScores) -> str:
  """What an official table shows and under which convention."""
  at = f'@{scores.threshold:g}'
  if scores.convention.startswith('flic'):
    return (f'FLIC PCK{at}, paper Table 3 layout, official scorer (MODEC): '
            'observer-centric labels')
  if scores.convention.startswith('mpii'):
    head = ('mean of upper neck and head top'
            if scores.convention == 'mpii_official' else 'head top')
    return (f'MPII PCKh{at}, paper Table 4 layout, '
            f'{official.ROW_LABELS[scores.convention]} (Head = {head})')
  return f'LSP PCK{at}, official scorer (Pishchulin): person-centric labels'
