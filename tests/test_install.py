"""The install: no TensorFlow anywhere, and TFDS reads data without it."""

import importlib.metadata
import importlib.util
import subprocess
import sys


def test_tensorflow_is_not_installed():
  names = {d.metadata['Name'].lower().replace('_', '-')
           for d in importlib.metadata.distributions()}
  tensorflow = {n for n in names if n in ('tensorflow', 'tensorflow-cpu',
                                          'tensorflow-gpu', 'tf-nightly',
                                          'tensorflow-intel', 'tensorflow-macos')}
  assert not tensorflow
  assert importlib.util.find_spec('tensorflow') is None


def test_reading_a_split_never_imports_tensorflow(tmp_path):
  script = f"""
import sys
from configs import synthetic
from cascade_jax.data import datasets
config = synthetic.get_config().data
config.num_train, config.num_test, config.data_dir = 4, 2, {str(tmp_path)!r}
source, _ = datasets.load_split(config, 'train')
assert source[0]['image'].shape == (128, 128, 3)
assert 'tensorflow' not in sys.modules, 'tensorflow was imported'
print('ok')
"""
  result = subprocess.run([sys.executable, '-c', script], capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip().endswith('ok')
