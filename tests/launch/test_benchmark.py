"""launch.benchmark as a user runs it, at CI size, as a subprocess."""

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

REPO = Path(__file__).parents[2]


@pytest.mark.slow
def test_benchmark_writes_table2_json(tmp_path):
  out = tmp_path / 'bench.json'
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  result = subprocess.run(
      [sys.executable, '-m', 'launch.benchmark',
       # tests/test_benchmark.py's tiny model, so that each compiles the
       # other's programs once (the session's compilation cache, conftest).
       '--config=configs/synthetic.py', '--config.data.input_size=(32,32)',
       '--config.model.bank_widths=(4,4,4,8)', '--config.model.context=16',
       '--config.model.head_widths=(8,8)',
       '--config.model.fine_bank_widths=(4,4)',
       '--config.model.fine_hidden_width=8', '--config.train.batch_size=2',
       '--poolings=8', '--batch_sizes=1,2', '--repeats=2', '--warmup=1',
       '--train_stages=coarse', '--train_batch_size=2', f'--out={out}'],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  written = json.loads(out.read_text())
  assert set(written) == {'environment', 'settings', 'forward', 'table2',
                          'train', 'sgemm', 'input_wait', 'peak_memory'}
  assert set(written['table2']['cascade']) == {'8x'}
  assert written['table2']['cascade']['8x']['paper_k40_ms'] == 94.2
  assert written['train'][0]['images_per_s'] > 0
  assert written['input_wait'] == []
  assert 'Forward ms per image' in result.stdout
  assert f'wrote {out}' in result.stdout
