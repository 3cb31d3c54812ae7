"""launch.predict and launch.report as a user runs them, as subprocesses."""

import json
import os
from pathlib import Path
import subprocess
import sys

import cv2
import pytest

from cascade_jax.data import datasets

REPO = Path(__file__).parents[2]


def _run(module, *flags):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', module, *flags], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_predict_writes_outputs_and_names_the_unreadable_file(
    tiny_cascade, tmp_path):
  workdir, config = tiny_cascade
  source, _ = datasets.load_split(config.data, 'test')
  cv2.imwrite(str(tmp_path / 'person.png'), source[0]['image'][..., ::-1])
  (tmp_path / 'empty.jpg').write_bytes(b'')
  out = tmp_path / 'out'
  result = _run('launch.predict', f'--workdir={workdir}',
                f'--images={tmp_path}/*.*', f'--out={out}',
                '--torso=31.5,30', '--scales=0.8,1.2', '--flip',
                '--min_score=0.2')
  assert result.returncode == 1
  assert 'empty.jpg' in result.stderr and 'Traceback' not in result.stderr
  assert ('warning: this checkpoint was trained on synthetic figures'
          in result.stderr)
  written = json.loads((out / 'person.json').read_text())
  assert written['crop']['torso'] == [31.5, 30.0]
  assert written['crop']['scales'] == [0.8, 1.2]
  assert written['flip'] and written['min_score'] == 0.2
  assert 'heat-map' in written['score']
  for joint in written['joints'].values():
    assert joint['shown'] == (joint['score'] >= 0.2)
  assert (out / 'person_overlay.png').stat().st_size > 0

  result = _run('launch.predict', f'--workdir={workdir}',
                f'--images={tmp_path}/person.png', f'--out={out}',
                '--bbox=1,2,3')
  assert result.returncode == 1
  assert '--bbox needs 4 comma-separated numbers' in result.stderr


@pytest.mark.slow
def test_report_prints_its_path(tiny_cascade):
  workdir, _ = tiny_cascade
  result = _run('launch.report', f'--workdir={workdir}', '--heatmaps=1')
  assert result.returncode == 0, result.stderr
  path = os.path.join(workdir, 'report', 'index.html')
  assert f'report: {path}' in result.stdout
  assert os.path.getsize(path) > 0
