"""Figures as PNG files: PCK curves (paper Figs. 12, 14-16), x-error histograms (Fig. 11), training curves.

Draws on a bare `matplotlib.figure.Figure` with the Agg canvas: no pyplot, no
display and no global backend switch, so it is safe in launchers and tests.
Curves are fractions in [0, 1], drawn as detection rate in percent.
"""

from __future__ import annotations

import os
import pathlib

from matplotlib.backends import backend_agg
from matplotlib import figure as figure_lib
import numpy as np

from cascade_jax import joint_sets as joint_sets_lib
from cascade_jax.eval import tables


def plot_pck_curves(thresholds, curves: dict[str, np.ndarray],
                    path: str | os.PathLike, title: str = 'PCK',
                    xlabel: str = 'Normalised distance',
                    ylabel: str = 'Detection rate (%)') -> pathlib.Path:
  """Writes a PNG with one PCK-vs-threshold line per entry of ``curves``.

  Args:
    thresholds: [T] normalised distances (x axis).
    curves: {legend label (joint group or model): [T] PCK fractions}.
    path: PNG file to write; missing parent folders are created.
    title, xlabel, ylabel: figure text.

  Returns:
    ``path`` as a pathlib.Path.
  """
  thresholds = np.asarray(thresholds, dtype=np.float64)
  if thresholds.ndim != 1 or thresholds.size == 0:
    raise ValueError(f'thresholds must be a non-empty [T] array, '
                     f'got shape {thresholds.shape}')
  if not curves:
    raise ValueError('curves is empty: nothing to plot')
  for label, curve in curves.items():
    if np.shape(curve) != thresholds.shape:
      raise ValueError(f'curve {label!r} has shape {np.shape(curve)}, '
                       f'expected [T] = {thresholds.shape}')
  fig = _new_figure((6.4, 4.8))
  ax = fig.add_subplot(1, 1, 1)
  for label, curve in curves.items():
    style = '--' if label == 'Mean' else '-'
    ax.plot(thresholds, 100.0 * np.asarray(curve, dtype=np.float64), style,
            marker='.', label=label)
  ax.set_xlim(thresholds[0], thresholds[-1])
  ax.set_ylim(0, 100)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.grid(True, alpha=0.4)
  ax.legend(loc='lower right')
  return _save(fig, path)


def plot_per_joint_curves(thresholds, curve, joint_set: joint_sets_lib.JointSet,
                          path: str | os.PathLike, title: str | None = None,
                          counts=None) -> pathlib.Path:
  """Writes a PNG with one line per joint group (left/right averaged) and Mean.

  Args:
    thresholds: [T] normalised distances.
    curve: [T, J] PCK fractions (from `metrics.pck`).
    joint_set: names the joints and so the groups (`tables.joint_groups`).
    path: PNG file to write.
    title: defaults to 'PCK (<joint set name>)'.
    counts: optional [J] labelled counts, to pool UBody and Mean over examples.

  Returns:
    ``path`` as a pathlib.Path.
  """
  curve = np.asarray(curve, dtype=np.float64)
  if curve.ndim != 2 or curve.shape[0] != np.size(thresholds):
    raise ValueError(f'curve must have shape [T, J] with T = '
                     f'{np.size(thresholds)}, got {curve.shape}')
  columns = tables.group_curves(curve, joint_set, counts)
  return plot_pck_curves(thresholds, columns, path,
                         title=title or f'PCK ({joint_set.name})')


def plot_error_histograms(errors: dict[str, np.ndarray],
                          path: str | os.PathLike, limit: float,
                          title: str = 'x error') -> pathlib.Path:
  """Writes a PNG of error histograms over [-limit, limit] (paper Fig. 11).

  Args:
    errors: {legend label: [N] errors in pixels}; values beyond the limit
      are left out of the plot (the caption's outliers).
    path: PNG file to write; missing parent folders are created.
    limit: half-width of the x range in pixels.
    title: figure title.

  Returns:
    ``path`` as a pathlib.Path.
  """
  if not errors:
    raise ValueError('errors is empty: nothing to plot')
  fig = _new_figure((6.4, 4.8))
  ax = fig.add_subplot(1, 1, 1)
  bins = np.linspace(-limit, limit, 2 * int(np.ceil(limit)) + 1)
  for label, values in errors.items():
    values = np.asarray(values, dtype=np.float64)
    values = values[np.abs(values) <= limit]
    if values.size:  # a density of nothing is undefined
      ax.hist(values, bins=bins, histtype='step', density=True, linewidth=1.5,
              label=label)
  ax.set_xlabel('x error (model-input pixels)')
  ax.set_ylabel('density')
  ax.set_title(title)
  ax.grid(True, alpha=0.4)
  ax.legend(loc='upper right')
  return _save(fig, path)


def plot_training_curves(series: dict[str, tuple[np.ndarray, np.ndarray]],
                         path: str | os.PathLike,
                         stage_ends=()) -> pathlib.Path:
  """Writes a PNG with one panel per scalar series against the step.

  Args:
    series: {tag: (steps [N], values [N])}, e.g. from `train.events`.
    path: PNG file to write; missing parent folders are created.
    stage_ends: steps where a training stage ends, drawn as dotted lines.

  Returns:
    ``path`` as a pathlib.Path.
  """
  if not series:
    raise ValueError('series is empty: nothing to plot')
  columns = min(3, len(series))
  rows = -(-len(series) // columns)
  fig = _new_figure((4.2 * columns, 3.0 * rows))
  for i, (tag, (steps, values)) in enumerate(sorted(series.items())):
    ax = fig.add_subplot(rows, columns, i + 1)
    ax.plot(steps, values, marker='.' if len(steps) < 30 else None)
    positive = np.all(np.asarray(values) > 0)
    if positive and ('loss' in tag or tag.endswith(('/e1', '/e2'))):
      ax.set_yscale('log')  # losses fall over decades
    for end in stage_ends:
      ax.axvline(end, color='grey', linestyle=':', linewidth=1)
    ax.set_title(tag)
    ax.set_xlabel('step')
    ax.grid(True, alpha=0.4)
  return _save(fig, path)


def _new_figure(figsize: tuple[float, float]) -> figure_lib.Figure:
  """A bare Figure on the Agg canvas (module docstring), 100 dpi."""
  fig = figure_lib.Figure(figsize=figsize, dpi=100)
  backend_agg.FigureCanvasAgg(fig)
  return fig


def _save(fig: figure_lib.Figure, path: str | os.PathLike) -> pathlib.Path:
  """Lays ``fig`` out and writes it as PNG, creating missing folders."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, format='png')
  return path
