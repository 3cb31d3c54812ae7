"""The precision study (paper Sec. 5): coarse against cascade, by pooling factor.

For each variant of an experiment config (4x / 8x / 16x cascades, the
standard-cascade baseline, the cascade without SpatialDropout) the study
trains it (resumably, one workdir per variant), predicts the evaluation
split, and writes a markdown report with PNG figures in the paper's layouts:
x-error histograms (Fig. 11), sigma of the x error per joint (Table 1), PCK
curves (Fig. 12), ours against the standard cascade (Fig. 14a) and
SpatialDropout on and off (Fig. 14b).

Errors are measured in model-input pixels, as the paper quotes them in its
network-input coordinates. The paper drops errors beyond 20 px of its 240-px
high input as wrong-person outliers; the cut here is the same fraction of
our input height.
"""

from __future__ import annotations

import dataclasses
import os

import ml_collections
import numpy as np

from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.eval import evaluate
from cascade_jax.eval import plots
from cascade_jax.eval import tables
from cascade_jax.train import loop
from cascade_jax.train import state as state_lib

# Variant name -> config overrides (dotted field -> value).
VARIANTS = {
    'cascade_4x': {'model.pooling': 4},
    'cascade_8x': {},
    'cascade_16x': {'model.pooling': 16},
    'standard_cascade_8x': {'model.name': 'standard_cascade',
                            'train.stage_steps.joint': 0},
    'no_dropout_8x': {'model.dropout_rate': 0.0},
}
POOLING_VARIANTS = ('cascade_4x', 'cascade_8x', 'cascade_16x')
# Rows per variant: the coarse argmax, its analytic sub-pixel refinements,
# and the learned refinement (the cascade).
METHODS = ('coarse', 'coarse_quarter', 'coarse_dark', 'cascade')
PAPER_INPUT_HEIGHT = 240   # FLIC input height of the paper's Table 1
PAPER_OUTLIER_PX = 20.0    # Table 1 footnote: |error| > 20 px are outliers


@dataclasses.dataclass
class VariantResult:
  """Predictions of one trained variant on the evaluation split.

  Attributes:
    name: the variant.
    coarse, cascade: [N, J, 2] predictions in original-image pixels.
    coarse_quarter, coarse_dark: the coarse heat-maps decoded sub-pixel (a
      quarter cell towards the larger neighbour; DARK): the analytic
      refinements the learned cascade is measured against.
    gt: [N, J, 2]; visible: [N, J].
    input_scale: [N] model-input pixels per original-image pixel.
    parameters: parameter count of the whole model; fine_parameters of its
      fine part.
  """
  name: str
  coarse: np.ndarray
  coarse_quarter: np.ndarray
  coarse_dark: np.ndarray
  cascade: np.ndarray
  gt: np.ndarray
  visible: np.ndarray
  input_scale: np.ndarray
  parameters: int
  fine_parameters: int


def variant_config(config: ml_collections.ConfigDict,
                   variant: str) -> ml_collections.ConfigDict:
  """A cascade version of ``config`` with ``variant``'s overrides."""
  if variant not in VARIANTS:
    raise ValueError(f'unknown variant {variant!r}; known: {sorted(VARIANTS)}')
  config = ml_collections.ConfigDict(config.to_dict())
  config.model.name = 'cascade'
  for field, value in VARIANTS[variant].items():
    *parents, leaf = field.split('.')
    node = config
    for parent in parents:
      node = node[parent]
    node[leaf] = value
  return config


def run_variant(config: ml_collections.ConfigDict, workdir: str,
                variant: str, flip: bool = False) -> VariantResult:
  """Trains (or resumes) ``variant`` in ``workdir``/``variant`` and predicts
  (with the flip test if ``flip``)."""
  variant_cfg = variant_config(config, variant)
  variant_dir = os.path.join(workdir, variant)
  state = loop.train_and_evaluate(variant_cfg, variant_dir)
  source, joint_set = datasets.load_split(variant_cfg.data,
                                          variant_cfg.data.eval_split)
  spec = pipeline.crop_spec(variant_cfg, joint_set)
  predictions = evaluate.predict_split(
      state, source, spec, variant_cfg.eval.batch_size, is_cascade=True,
      fusion=evaluate.fusion_options(variant_cfg.eval), flip=flip)
  return VariantResult(
      name=variant, coarse=predictions['coarse'],
      coarse_quarter=predictions['coarse_quarter'],
      coarse_dark=predictions['coarse_dark'],
      cascade=predictions['cascade'], gt=predictions['gt'],
      visible=predictions['visible'],
      input_scale=predictions['input_scale'],
      parameters=state_lib.parameter_count(state.params),
      fine_parameters=state_lib.parameter_count(state.params['fine']))


def x_errors(pred, result: VariantResult) -> list[np.ndarray]:
  """Per joint, the x errors (pred - gt) of labelled joints in input pixels."""
  errors = (pred[..., 0] - result.gt[..., 0]) * result.input_scale[:, None]
  return [errors[result.visible[:, j], j] for j in range(errors.shape[1])]


def sigma_without_outliers(errors: np.ndarray, limit: float) -> float:
  """Standard deviation of the errors within +-``limit`` (Table 1 footnote)."""
  kept = errors[np.abs(errors) <= limit]
  return float(np.std(kept)) if kept.size else float('nan')


def outlier_limit(input_height: int) -> float:
  """The paper's 20 px cut, as the same fraction of our input height."""
  return PAPER_OUTLIER_PX * input_height / PAPER_INPUT_HEIGHT


def write_report(results: dict[str, VariantResult], joint_set,
                 thresholds: np.ndarray, input_height: int,
                 out_dir: str, flip: bool = False) -> str:
  """Writes ``out_dir``/precision_study.md and its PNG figures; returns its
  path. ``flip`` says in the text that the predictions used the flip test."""
  os.makedirs(out_dir, exist_ok=True)
  limit = outlier_limit(input_height)
  groups = tables.joint_groups(joint_set)
  lines = ['# Precision study: coarse against cascade', '',
           f'Errors in model-input pixels (input height {input_height}); '
           f'sigma of the x error drops |error| > {limit:.1f} px (the paper\'s '
           f'20 px of {PAPER_INPUT_HEIGHT}, scaled). PCK normalised by the '
           'torso (`evaluate.score`); evaluation split' +
           (', flip test (each image and its mirror).' if flip else '.'), '']

  sigma_rows, pck_rows = [], []
  for name, result in results.items():
    for method in METHODS:
      errors = x_errors(getattr(result, method), result)
      sigma = [sigma_without_outliers(e, limit) for e in errors]
      sigma_rows.append([f'{name} {method}'] + [
          f'{np.nanmean([sigma[j] for j in idx]):.2f}' for idx in groups.values()]
          + [f'{np.nanmean(sigma):.2f}'])
      scored = _score(result, method, joint_set, thresholds)
      scores = {t: tables.group_scores(scored['curve'][_index(thresholds, t)],
                                       joint_set, scored['counts'])
                for t in (0.05, 0.2)}
      pck_rows.append([f'{name} {method}'] + [
          f'{100 * scores[t][g]:.1f}' for t in (0.05, 0.2)
          for g in list(groups) + ['Mean']])
  lines += ['## Sigma of the x error per joint (paper Table 1 layout)', '',
            _markdown_table(['model'] + list(groups) + ['all joints'],
                            sigma_rows), '',
            '## PCK (paper Fig. 12 / Table 3)', '',
            f'{scored["unusable_torso"]} of {len(scored["norm"])} people '
            'left out: torso joints not both labelled.', '',
            _markdown_table(['model'] + [
                f'{g}@{t}' for t in (0.05, 0.2) for g in list(groups) + ['Mean']],
                            pck_rows), '']

  figures = []
  for name in [n for n in POOLING_VARIANTS if n in results]:
    result = results[name]
    histogram = plots.plot_error_histograms(
        {f'{method} {group}': np.concatenate(
            [x_errors(getattr(result, method), result)[j]
             for j in groups[group]])
         for group in ('Head', 'Shoulder') if group in groups
         for method in ('coarse', 'cascade')},
        os.path.join(out_dir, f'x_error_{name}.png'), limit,
        title=f'{name}: x error (Fig. 11)')
    curves = plots.plot_pck_curves(
        thresholds,
        {f'{method} {group}': _group_curve(result, method, joint_set,
                                           thresholds, group)
         for group in ('Head', 'Wrist') for method in ('coarse', 'cascade')},
        os.path.join(out_dir, f'pck_{name}.png'), title=f'{name} (Fig. 12)')
    figures += [f'![x error, {name}]({os.path.basename(histogram)})',
                f'![PCK, {name}]({os.path.basename(curves)})']
  for other, figure in (('standard_cascade_8x', '14a'),
                        ('no_dropout_8x', '14b')):
    if other in results and 'cascade_8x' in results:
      path = plots.plot_pck_curves(
          thresholds,
          {f'{n} Wrist': _group_curve(results[n], 'cascade', joint_set,
                                      thresholds, 'Wrist')
           for n in ('cascade_8x', other)},
          os.path.join(out_dir, f'pck_{other}.png'),
          title=f'Wrist: cascade_8x vs {other} (Fig. {figure})')
      figures.append(f'![{other}]({os.path.basename(path)})')
  lines += ['## Figures', ''] + figures + ['']

  if 'standard_cascade_8x' in results and 'cascade_8x' in results:
    lines += ['## Parameter counts (paper Sec. 5: matched by an extra conv)', '',
              _markdown_table(['model', 'fine part', 'whole model'], [
                  [n, f'{results[n].fine_parameters:,}',
                   f'{results[n].parameters:,}']
                  for n in ('cascade_8x', 'standard_cascade_8x')]), '']
  path = os.path.join(out_dir, 'precision_study.md')
  with open(path, 'w') as f:
    f.write('\n'.join(lines))
  return path


def _score(result: VariantResult, method: str, joint_set, thresholds):
  predictions = {method: getattr(result, method), 'gt': result.gt,
                 'visible': result.visible}
  return evaluate.score(predictions, method, joint_set, thresholds)


def _group_curve(result, method, joint_set, thresholds, group) -> np.ndarray:
  scored = _score(result, method, joint_set, thresholds)
  return tables.group_curves(scored['curve'], joint_set,
                             scored['counts'])[group]


def _index(thresholds, value) -> int:
  return int(np.argmin(np.abs(np.asarray(thresholds) - value)))


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
  return '\n'.join(lines)


def run_study(config: ml_collections.ConfigDict, workdir: str,
              variants=tuple(VARIANTS), flip: bool = False) -> str:
  """Trains and predicts every variant, then writes the report; its path.

  With ``flip`` every variant predicts with the flip test and the report goes
  to ``workdir``/flip/ (the variants' training is shared with the plain
  study, so the two reports compare the same models).
  """
  results = {name: run_variant(config, workdir, name, flip)
             for name in variants}
  _, joint_set = datasets.load_split(config.data, config.data.eval_split)
  thresholds = np.linspace(0.0, config.eval.max_threshold,
                           config.eval.num_thresholds)
  return write_report(results, joint_set, thresholds, config.data.input_size[1],
                      os.path.join(workdir, 'flip') if flip else workdir,
                      flip)
