"""launch.spatial_kernels and the kernels it computes, on the real builders'
fixtures (FLIC torsobox, MPII objpos) and on synthetic data."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from cascade_jax import joint_sets
from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.data.mpii import valid_split
from cascade_jax.model import spatial
from cascade_jax.model import spatial_kernels
from configs import flic_8x
from configs import mpii as mpii_config
from tests.data import fixtures

REPO = pathlib.Path(__file__).parents[2]


def _check_kernels(config, joint_set, heatmap_size, expected_count):
  kernels, graph, count = spatial_kernels.from_training_split(config)
  assert count == expected_count
  np.testing.assert_array_equal(
      graph, spatial.pairs(joint_set.num_joints,
                           [tuple(e) for e in joint_set.edge_indices]))
  assert kernels.shape == (len(graph), *spatial.kernel_shape(heatmap_size))
  np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1.0, rtol=1e-5)
  spatial_kernels.save(config.model.spatial.kernel_file, kernels, graph,
                       config.model.pooling, count)
  model = spatial.build(config, joint_set)  # reads and checks the file
  assert model.kernel_size == spatial.kernel_shape(heatmap_size)


def test_flic_kernels_use_the_torsobox_centre(tmp_path):
  fixtures.write_flic_dataset(tmp_path / 'manual')
  config = flic_8x.get_config()
  config.data.data_dir = str(tmp_path / 'tfds')
  config.data.manual_dir = str(tmp_path / 'manual')
  config.model.spatial.kernel_file = str(tmp_path / 'k' / 'flic_8x.npz')
  assert config.model.spatial.torso_key == 'torso_center'
  # The kernels count data.train_split only: the config holds out the first
  # 400 training frames, the fixture's first of its 3 here.
  assert config.data.train_split == 'train[400:]'
  config.data.train_split = 'train[1:]'
  _check_kernels(config, joint_sets.FLIC, (30, 40), expected_count=2)


def test_mpii_kernels_use_objpos(tmp_path, monkeypatch):
  monkeypatch.setattr(valid_split, 'load', lambda: np.array([[0, 1]]))
  images = fixtures.mpii_images()
  fixtures.write_mpii(tmp_path / 'manual', fixtures.mpii_release(images),
                      [name for name, _, _ in images])
  config = mpii_config.get_config()
  config.data.data_dir = str(tmp_path / 'tfds')
  config.data.manual_dir = str(tmp_path / 'manual')
  config.model.spatial.kernel_file = str(tmp_path / 'mpii_8x.npz')
  assert config.model.spatial.torso_key == 'person_center'
  config.data.train_split = 'train'  # the fixture holds fewer than 400
  _check_kernels(config, joint_sets.MPII, (32, 32),
                 expected_count=len(datasets.load_split(config.data,
                                                        'train')[0]))


def _synthetic_flags(tmp_path):
  return ['--config=configs/synthetic_spatial.py',
          f'--config.data.data_dir={tmp_path}',
          '--config.data.num_train=6', '--config.data.num_test=2',
          '--config.data.train_split=train[2:]',  # the config holds out 1000
          f'--config.model.spatial.kernel_file={tmp_path}/kernels.npz']


def test_launcher_writes_the_kernel_file_of_the_config(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'launch.spatial_kernels',
       *_synthetic_flags(tmp_path)],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'from 4 training examples' in result.stdout
  with np.load(tmp_path / 'kernels.npz') as saved:
    assert saved['kernels'].shape == (42, 23, 23)
    assert int(saved['num_examples']) == 4


def test_offsets_are_counted_in_the_evaluation_crop(tmp_path):
  from configs import synthetic_spatial  # pylint: disable=g-import-not-at-top
  config = synthetic_spatial.get_config()
  config.data.data_dir = str(tmp_path)
  config.data.num_train, config.data.num_test = 4, 1
  source, joint_set = datasets.load_split(config.data, 'train')
  spec = pipeline.crop_spec(config, joint_set)
  joints, visible, torso = spatial_kernels.crop_positions(
      source, spec, 'torso_center')
  for index in range(len(source)):
    example = pipeline.prepare_example(source[index], spec, rng=None)
    np.testing.assert_allclose(joints[index], example['joints'], atol=1e-4)
    np.testing.assert_array_equal(visible[index], example['visible'])
    np.testing.assert_allclose(torso[index], example['torso'], atol=1e-4)


def test_missing_kernel_file_names_the_launcher(tmp_path):
  config = flic_8x.get_config()
  config.model.spatial.kernel_file = str(tmp_path / 'none.npz')
  with pytest.raises(FileNotFoundError, match='launch.spatial_kernels'):
    spatial.build(config, joint_sets.FLIC)
  # A model whose parameters a checkpoint restores starts from uniform ones.
  restored = spatial.build(config, joint_sets.FLIC, initial_kernels=False)
  assert restored.kernel_file == '' and restored.kernel_size == (59, 79)
