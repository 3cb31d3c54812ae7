"""launch.build_dataset prepares a config's splits and prints their sizes."""

import pathlib
import re
import subprocess
import sys

from tests.data import fixtures

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


def test_skips_and_reports_unreadable_images(tmp_path):
  """--config.data.bad_images=skip builds FLIC without its truncated frame
  and says so; the default stops naming the file."""
  fixtures.write_flic_dataset(tmp_path / 'manual')
  frame = tmp_path / 'manual' / 'FLIC' / 'images' / 'movie-00000002.jpg'
  frame.write_bytes(frame.read_bytes()[:-100])
  command = [sys.executable, '-m', 'launch.build_dataset',
             '--config=configs/flic_8x.py',
             f'--config.data.data_dir={tmp_path}',
             f'--config.data.manual_dir={tmp_path / "manual"}']
  failed = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
  assert failed.returncode != 0
  # One line, the project's error (launch.cli), no traceback.
  assert f'error: cannot read {frame} as an image' in failed.stderr
  assert 'Traceback' not in failed.stderr
  result = subprocess.run(command + ['--config.data.bad_images=skip'],
                          cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'flic/flic train: 2 examples, 11 flic joints' in result.stdout
  assert 'flic/flic test: 2 examples' in result.stdout
  assert re.search(r'train: 1 examples were left out .*' + str(frame),
                   result.stderr)
