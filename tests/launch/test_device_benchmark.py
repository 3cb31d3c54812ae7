"""launch/device_benchmark.sh, the GPU benchmark's script: what can be
checked without a GPU (its figures need one: BUILD_NOTES.md, speed)."""

import pathlib
import re
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'launch' / 'device_benchmark.sh'


def test_without_the_carried_wheels_it_stops_and_says_how_to_make_them(
    tmp_path):
  run = subprocess.run(['bash', str(SCRIPT), str(tmp_path / 'out')],
                       cwd=tmp_path, capture_output=True, text=True,
                       check=False)
  assert run.returncode == 1
  assert "no .device_wheels/requirements.txt: run 'make device-wheels'" in (
      run.stderr)
  assert not (tmp_path / 'out').exists()  # Nothing started.


def test_the_wheels_cover_every_pinned_dependency_but_the_images():
  # Each of the project's pinned dependencies is either in the GPU image
  # (jax, flax, ... are, in their own versions) or carried as a wheel.
  setup = (REPO / 'setup.cfg').read_text()
  pinned = re.findall(r'^    ([A-Za-z0-9_.-]+)==', setup.split(
      'install_requires =')[1].split('[options.package_data]')[0], re.M)
  makefile = (REPO / 'Makefile').read_text()
  missing = re.search(r'DEVICE_MISSING := ((?:.*\\\n)*.*)', makefile).group(1)
  carried = set(missing.replace('\\\n', ' ').split())
  in_image = {'jax', 'jaxlib', 'flax', 'optax', 'chex', 'orbax-checkpoint',
              'etils', 'absl-py', 'numpy', 'scipy', 'opencv-python-headless',
              'pillow', 'matplotlib', 'tensorboard', 'h5py'}
  normalised = {name.lower().replace('_', '-') for name in pinned}
  assert normalised - in_image <= carried
  assert {'grain', 'tensorflow-datasets', 'array-record',
          'ml-collections'} <= carried
