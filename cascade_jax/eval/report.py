"""One HTML page that shows what a training run learned.

`write_report(workdir)` writes ``workdir``/report/index.html and the PNG
figures it shows, side by side in that folder (copy the folder to share it):
training curves (TensorBoard scalars), PCK curves, the per-joint tables in
the paper's layouts (Table 3 for FLIC-style joint sets, Table 4 for
full-body ones), x-error histograms (Fig. 11), the best and worst test
examples with their skeletons, and per-joint coarse heat-maps of a few
images. It reads the evaluation's predictions (``workdir``/eval, as
`evaluate.evaluate_checkpoint` writes them, or ``workdir``/eval_flip for the
flip test's) and runs that evaluation first when they are missing.
"""

from __future__ import annotations

import html
import os

import cv2
import numpy as np

from cascade_jax import drawing
from cascade_jax import predictor as predictor_lib
from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.eval import evaluate
from cascade_jax.eval import plots
from cascade_jax.eval import precision
from cascade_jax.eval import tables
from cascade_jax.model import build
from cascade_jax.train import checkpoint
from cascade_jax.train import events
from cascade_jax.train import stages

# What the report reads from the evaluation's predictions.npz (MPII: and
# 'head_boxes', for PCKh).
PREDICTION_FIELDS = ('coarse', 'gt', 'visible', 'input_scale')
# Row labels of the methods `evaluate.predict_split` may return.
METHOD_TITLES = {'coarse': 'coarse model',
                 'coarse_quarter': 'coarse model, quarter-cell decoding',
                 'coarse_dark': 'coarse model, DARK decoding',
                 'spatial': 'spatial model (MRF)',
                 'cascade_no_spatial': 'cascade without the MRF',
                 'cascade': 'cascade (fine)'}


def write_report(workdir: str, num_examples: int = 4,
                 num_heatmaps: int = 3, flip: bool = False) -> str:
  """Writes ``workdir``/report/index.html and its figures; returns its path.

  Args:
    workdir: a training run's directory (checkpoints/, tensorboard/, eval/).
    num_examples: how many best and how many worst examples to show.
    num_heatmaps: how many examples get per-joint heat-map panels.
    flip: report the flip test's evaluation (``workdir``/eval_flip).
  """
  config = checkpoint.restore_config(workdir)
  joint_set = datasets.joint_set(config.data)
  predictions = _load_predictions(workdir, config, flip)
  officials = {m: evaluate.official_scores(predictions, m, config.data.name)
               for m in present_methods(predictions)}
  methods = present_methods(predictions)
  final = evaluate.final_method(predictions)
  out_dir = os.path.join(workdir, 'report')
  os.makedirs(out_dir, exist_ok=True)
  predictor = predictor_lib.Predictor.from_checkpoint(workdir)
  title = (f'{config.data.name}/{config.data.builder_config}, '
           f'{config.model.name} model, step {predictor.step}'
           + (', flip test' if flip else ''))
  print(f'writing the report of {workdir} ({title})')

  thresholds = np.linspace(0.0, config.eval.max_threshold,
                           config.eval.num_thresholds)
  scored = {m: evaluate.score(predictions, m, joint_set, thresholds)
            for m in methods}
  source, _ = datasets.load_split(config.data, config.data.eval_split)
  sections = [
      _training_section(workdir, config, out_dir),
      _pck_section(scored, joint_set, thresholds, final, out_dir),
      _tables_section(scored, officials, joint_set, thresholds),
      _error_section(predictions, methods, joint_set, config, out_dir),
      _examples_section(predictions, scored, final, joint_set, source,
                        num_examples, config, out_dir),
      _heatmap_section(predictor, source, config, num_heatmaps, out_dir),
  ]
  path = os.path.join(out_dir, 'index.html')
  with open(path, 'w') as f:
    f.write(_page(f'cascade_jax report: {title}', workdir, sections))
  return path


def present_methods(predictions) -> list[str]:
  """The prediction methods in ``predictions``, in the evaluation's order."""
  return [m for m in evaluate.METHODS if m in predictions]


def _load_predictions(workdir, config, flip) -> dict[str, np.ndarray]:
  """The evaluation's predictions.npz (the flip test's with ``flip``),
  evaluating the checkpoint first when it is missing or was written without
  a field the report needs."""
  path = os.path.join(evaluate.eval_dir(workdir, flip), 'predictions.npz')
  if os.path.exists(path):
    with np.load(path) as saved:
      predictions = dict(saved)
    needed = set(PREDICTION_FIELDS) | (
        {'head_boxes'} if config.data.name == 'mpii' else set())
    missing = needed - set(predictions)
    if not missing:
      return predictions
    print(f'{path} lacks {sorted(missing)}: evaluating the checkpoint again')
  else:
    print(f'no {path}: evaluating the checkpoint first')
  evaluate.evaluate_checkpoint(config, workdir, flip)
  with np.load(path) as saved:
    return dict(saved)


def _training_section(workdir, config, out_dir) -> str:
  tensorboard = os.path.join(workdir, 'tensorboard')
  try:
    series = events.read_scalars(tensorboard)
  except FileNotFoundError:
    return _section('Training curves', '<p>No TensorBoard event files in '
                    f'{html.escape(tensorboard)}.</p>')
  model = build.build_model(config.model,
                            datasets.joint_set(config.data).num_joints)
  schedule = stages.plan(config.train, build.is_cascade(model))
  plots.plot_training_curves(series, os.path.join(out_dir, 'training.png'),
                             stage_ends=[s.end for s in schedule[:-1]])
  stages_text = ', '.join(f'{s.name} steps {s.begin + 1}-{s.end}'
                          for s in schedule)
  return _section('Training curves', (
      f'<p>Stages: {html.escape(stages_text)} (dotted lines: stage ends). '
      'Logged every train.log_every steps; e1 / e2 are the coarse and fine '
      'losses (paper Sec. 4.2).</p>' + _img('training.png')))


def _pck_section(scored, joint_set, thresholds, final, out_dir) -> str:
  plots.plot_per_joint_curves(thresholds, scored[final]['curve'], joint_set,
                              os.path.join(out_dir, 'pck_per_group.png'),
                              title=f'PCK by joint group, {final}')
  body = _img('pck_per_group.png')
  if len(scored) > 1:
    plots.plot_pck_curves(
        thresholds, {METHOD_TITLES[m]: tables.group_curves(
            s['curve'], joint_set, s['counts'])['Mean']
                     for m, s in scored.items()},
        os.path.join(out_dir, 'pck_methods.png'), title='Mean PCK')
    body += _img('pck_methods.png')
  auc = ', '.join(f'{METHOD_TITLES[m]} {100 * np.nanmean(s["auc"]):.1f}'
                  for m, s in scored.items())
  left_out = next(iter(scored.values()))['unusable_torso']
  return _section('PCK curves', (
      '<p>Detection rate against the distance normalised by the torso '
      f'(||l_shoulder - r_hip||); {left_out} people whose torso joints are '
      f'not both labelled left out. Mean AUC over joints: {auc}.</p>' + body))


def _tables_section(scored, officials, joint_set, thresholds) -> str:
  body = ''
  methods = [m for m, s in officials.items() if s]
  for k, first in enumerate(officials[methods[0]] if methods else ()):
    rows = {METHOD_TITLES[m]: dict(officials[m][k].columns,
                                   **officials[m][k].extras) for m in methods}
    columns = list(next(iter(rows.values())))
    body += _html_table(evaluate.official_title(first), ['Method'] + columns,
                        [[label] + [_percent(row[c]) for c in columns]
                         for label, row in rows.items()])
    body += ''.join(f'<p>Note: {html.escape(n)}</p>'
                    for n in evaluate.official_notes(officials, k))
  layout = 'Table 4' if tables.is_full_body(joint_set) else 'Table 3'
  extra = evaluate.EXTRA.capitalize() if methods else ''
  left_out = next(iter(scored.values()))['unusable_torso']
  for threshold in evaluate.TABLE_THRESHOLDS:
    t = int(np.argmin(np.abs(thresholds - threshold)))
    rows = {METHOD_TITLES[m]: tables.group_scores(s['curve'][t], joint_set,
                                                  s['counts'])
            for m, s in scored.items()}
    columns = list(next(iter(rows.values())))
    body += _html_table(f'{extra}torso PCK@{thresholds[t]:.2f} (paper '
                        f'{layout} layout; {left_out} people without both '
                        'torso joints labelled left out)',
                        ['Method'] + columns,
                        [[label] + [_percent(row[c]) for c in columns]
                         for label, row in rows.items()])
    body += _html_table(
        f'Per joint, torso PCK@{thresholds[t]:.2f}', ['Joint'] +
        [METHOD_TITLES[m] for m in scored],
        [[joint] + [_percent(s['curve'][t][j]) for s in scored.values()]
         for j, joint in enumerate(joint_set.joints)])
  return _section('Per-joint tables', body)


def _error_section(predictions, methods, joint_set, config, out_dir) -> str:
  limit = precision.outlier_limit(config.data.input_size[1])
  groups = tables.joint_groups(joint_set)
  # Errors in model-input pixels, as the paper quotes them (Table 1).
  errors = ((np.stack([predictions[m] for m in methods])[..., 0]
             - predictions['gt'][..., 0]) * predictions['input_scale'][:, None])
  visible = predictions['visible']
  plots.plot_error_histograms(
      {METHOD_TITLES[m]: errors[i][visible] for i, m in enumerate(methods)},
      os.path.join(out_dir, 'x_error.png'), limit,
      title='x error, all joints (paper Fig. 11)')
  rows = []
  for i, method in enumerate(methods):
    sigma = [precision.sigma_without_outliers(
        np.concatenate([errors[i][visible[:, j], j] for j in idx]), limit)
             for idx in groups.values()]
    sigma.append(precision.sigma_without_outliers(errors[i][visible], limit))
    rows.append([METHOD_TITLES[method]] + [f'{v:.2f}' for v in sigma])
  return _section('x-error histograms', (
      f'<p>Prediction minus ground truth in x, model-input pixels; errors '
      f'beyond &plusmn;{limit:.1f} px (the paper\'s 20 px of 240, scaled) are '
      'outliers, left out of the plot and of sigma.</p>' + _img('x_error.png')
      + _html_table('Sigma of the x error (paper Table 1 layout)',
                    ['Method'] + list(groups) + ['all joints'], rows)))


def _examples_section(predictions, scored, final, joint_set, source,
                      num_examples, config, out_dir) -> str:
  norm = scored[final]['norm']  # NaN: torso unusable, example left out
  distance = np.linalg.norm(predictions[final] - predictions['gt'], axis=-1)
  labelled = predictions['visible'] & np.isfinite(norm)[:, None]
  with np.errstate(invalid='ignore', divide='ignore'):
    error = np.where(labelled, distance / norm[:, None], 0).sum(1) / (
        labelled.sum(1))
  order = [int(i) for i in np.argsort(error) if np.isfinite(error[i])]
  count = min(num_examples, len(order) // 2 or len(order))
  picks = {'Best': order[:count], 'Worst': order[::-1][:count]}
  body = (f'<p>Mean error over labelled joints, divided by the torso size, of '
          f'the {METHOD_TITLES[final]}; coloured skeleton: prediction (cyan '
          'left, magenta right), white rings: ground truth.</p>')
  for label, indices in picks.items():
    figures = []
    for index in indices:
      name = f'{label.lower()}_{index}.png'
      image = _record_image(source[index])
      big, joints = drawing.enlarge(image, np.stack(
          [predictions[final][index], predictions['gt'][index]]))
      overlay = drawing.draw_skeleton(big, joints[0], joint_set, joints[1],
                                      predictions['visible'][index])
      cv2.imwrite(os.path.join(out_dir, name), overlay[..., ::-1])
      figures.append(_figure(name, f'test example {index}: error '
                             f'{error[index]:.3f} torso'))
    body += f'<h3>{label}</h3><div class="row">{"".join(figures)}</div>'
  return _section(f'Best and worst {config.data.eval_split} examples', body)


def _heatmap_section(predictor, source, config, num_heatmaps, out_dir) -> str:
  body = ('<p>Coarse heat-maps per joint on the evaluation crop (clipped to '
          '[0, 1], the target range).</p>')
  for index in range(min(num_heatmaps, len(source))):
    record = source[index]
    prediction = predictor.predict_crops(
        [_record_image(record)], [record[config.data.crop_center]],
        [record['person_scale']])[0]
    name = f'heatmaps_{index}.png'
    panel = drawing.heatmap_panel(prediction.crops[0], prediction.heatmaps[0],
                                  predictor.joint_set)
    cv2.imwrite(os.path.join(out_dir, name), panel[..., ::-1])
    body += _figure(name, f'test example {index}')
  return _section('Heat-maps', body)


def _record_image(record) -> np.ndarray:
  """The record's RGB pixels, decoding encoded bytes (real datasets)."""
  image = record['image']
  if pipeline.is_encoded(image):
    return np.ascontiguousarray(pipeline.decode_image(image)[..., ::-1])
  return np.asarray(image)


def _percent(value) -> str:
  return '-' if value is None or np.isnan(value) else f'{100 * value:.1f}'


def _html_table(caption, header, rows) -> str:
  head = ''.join(f'<th>{html.escape(str(h))}</th>' for h in header)
  body = ''.join('<tr>' + ''.join(f'<td>{html.escape(str(c))}</td>'
                                  for c in row) + '</tr>' for row in rows)
  return (f'<table><caption>{html.escape(caption)}</caption>'
          f'<tr>{head}</tr>{body}</table>')


def _img(name: str) -> str:
  return f'<img src="{html.escape(name)}" alt="{html.escape(name)}">'


def _figure(name: str, caption: str) -> str:
  return (f'<figure>{_img(name)}<figcaption>{html.escape(caption)}'
          '</figcaption></figure>')


def _section(title: str, body: str) -> str:
  return f'<section><h2>{html.escape(title)}</h2>{body}</section>'


_STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; }
table { border-collapse: collapse; margin: 1em 0; }
caption { font-weight: bold; text-align: left; padding: 0.3em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; }
.row { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0.5em 0; }
"""


def _page(title: str, workdir: str, sections) -> str:
  return ('<!DOCTYPE html><html><head><meta charset="utf-8">'
          f'<title>{html.escape(title)}</title><style>{_STYLE}</style></head>'
          f'<body><h1>{html.escape(title)}</h1><p>Run: '
          f'{html.escape(os.path.abspath(workdir))}</p>'
          + ''.join(sections) + '</body></html>\n')
