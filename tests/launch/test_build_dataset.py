"""launch.build_dataset prepares a config's splits and prints their sizes."""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).parents[2]


def test_builds_the_synthetic_splits(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'launch.build_dataset',
       '--config=configs/synthetic.py', f'--config.data.data_dir={tmp_path}',
       '--config.data.num_train=4', '--config.data.num_test=2'],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'synthetic_pose/flic train: 4 examples, 11 flic joints' in result.stdout
  assert 'synthetic_pose/flic test: 2 examples' in result.stdout
  assert any((tmp_path / 'synthetic_pose').iterdir())
