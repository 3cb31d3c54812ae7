"""The HTML report of a trained run renders, with every figure it references."""

import html
import html.parser
import os
import re
import shutil

import numpy as np
import pytest

from cascade_jax import joint_sets
from cascade_jax.eval import evaluate
from cascade_jax.eval import report
from tests.eval import scoring_fixtures


class _Images(html.parser.HTMLParser):
  """Collects <img src> values and the <h2> section titles."""

  def __init__(self):
    super().__init__()
    self.sources, self.titles, self._in_h2 = [], [], False

  def handle_starttag(self, tag, attrs):
    if tag == 'img':
      self.sources.append(dict(attrs)['src'])
    self._in_h2 = tag == 'h2'

  def handle_data(self, data):
    if self._in_h2:
      self.titles.append(data)
      self._in_h2 = False


def test_every_evaluation_method_has_a_title_and_the_final_one_is_last():
  assert set(report.METHOD_TITLES) == set(evaluate.METHODS)
  predictions = {'cascade': 0, 'gt': 0, 'coarse': 0, 'spatial': 0}
  assert report.present_methods(predictions) == ['coarse', 'spatial',
                                                 'cascade']


def test_tables_section_official_first_torso_pck_an_extra():
  """MPII: PCKh under both head conventions, then torso PCK, named extra."""
  predictions = scoring_fixtures.mpii_people()
  thresholds = np.linspace(0.0, 0.2, 21)
  scored = {'coarse': evaluate.score(predictions, 'coarse', joint_sets.MPII,
                                     thresholds)}
  officials = {'coarse': evaluate.official_scores(predictions, 'coarse',
                                                  'mpii')}
  page = report._tables_section(scored, officials, joint_sets.MPII,
                                thresholds)
  captions = [html.unescape(c) for c in re.findall(
      r'<caption>(.*?)</caption>', page)]
  assert captions[:3] == [
      'MPII PCKh@0.5, paper Table 4 layout, MPII official (Matlab) (Head = '
      'mean of upper neck and head top)',
      'MPII PCKh@0.5, paper Table 4 layout, HRNet python port (Head = head '
      'top)',
      "Extra, not the paper's metric: torso PCK@0.05 (paper Table 4 layout; "
      '1 people without both torso joints labelled left out)']
  # The official row, as worked out in scoring_fixtures.mpii_people.
  assert ('<td>coarse model</td><td>75.0</td><td>100.0</td><td>100.0</td>'
          '<td>75.0</td><td>100.0</td><td>100.0</td><td>100.0</td>'
          '<td>91.7</td><td>92.6</td>') in page


@pytest.mark.slow
def test_report_renders_with_every_referenced_image(tiny_cascade):
  workdir, _ = tiny_cascade
  path = report.write_report(workdir, num_examples=2, num_heatmaps=2)
  assert path == os.path.join(workdir, 'report', 'index.html')
  parser = _Images()
  with open(path) as f:
    page = f.read()
  parser.feed(page)
  assert parser.titles == [
      'Training curves', 'PCK curves', 'Per-joint tables',
      'x-error histograms', 'Best and worst test examples', 'Heat-maps']
  assert len(parser.sources) == len(set(parser.sources))
  for source in parser.sources:
    assert not os.path.isabs(source)  # the folder can be moved as a whole
    image = os.path.join(os.path.dirname(path), source)
    assert os.path.getsize(image) > 0, source
  expected = {'training.png', 'pck_per_group.png', 'pck_methods.png',
              'x_error.png', 'heatmaps_0.png', 'heatmaps_1.png'}
  assert expected <= set(parser.sources)
  assert sum(s.startswith(('best_', 'worst_')) for s in parser.sources) == 4
  # Paper Table 3 layout for FLIC-style joints, both methods, both thresholds.
  for text in ('torso PCK@0.05 (paper Table 3 layout;',
               'torso PCK@0.20 (paper Table 3 layout;',
               '<th>Wrist</th>', 'cascade (fine)', 'coarse model',
               'Sigma of the x error'):
    assert text in page


@pytest.mark.slow
def test_flip_report_reads_the_flip_tests_evaluation(tiny_cascade, tmp_path,
                                                     monkeypatch):
  # After the test above: the copy then holds its plain evaluation.
  workdir, config = tiny_cascade
  run = str(tmp_path / 'run')
  shutil.copytree(workdir, run,
                  ignore=shutil.ignore_patterns('report', 'eval_flip'))
  plain = report._load_predictions(run, config, flip=False)
  assert not np.allclose(plain['coarse'], plain['gt'])
  calls = []

  def flip_evaluation(config, workdir, flip=False):
    """Stands in for the flip test: its coarse answers are the labels."""
    del config  # Unused.
    calls.append(flip)
    out_dir = evaluate.eval_dir(workdir, flip)
    os.makedirs(out_dir, exist_ok=True)
    np.savez(os.path.join(out_dir, 'predictions.npz'),
             **{**plain, 'coarse': plain['gt']})

  monkeypatch.setattr(evaluate, 'evaluate_checkpoint', flip_evaluation)
  path = report.write_report(run, num_examples=1, num_heatmaps=1, flip=True)
  with open(path) as f:
    page = f.read()
  assert calls == [True]  # eval_flip/ was missing: evaluated with flip
  assert os.path.exists(os.path.join(run, 'eval_flip', 'predictions.npz'))
  assert 'flip test' in page
  assert '<td>coarse model</td><td>100.0</td><td>100.0</td>' in page
