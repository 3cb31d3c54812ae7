"""Tests of cascade_jax/data/features.py: what every pose builder shares."""

import glob
import os
import tempfile

import pytest

from cascade_jax.data import features
from cascade_jax.data.flic import flic
from cascade_jax.data.lsp import lsp
from cascade_jax.data.mpii import mpii
from cascade_jax.data.synthetic_pose import synthetic_pose


def _tfds_temporary_dirs() -> set[str]:
  return set(glob.glob(os.path.join(tempfile.gettempdir(), 'tmp*tfds')))


@pytest.mark.parametrize('builder_class', [
    flic.FlicPose, lsp.LspPose, mpii.MpiiPose, synthetic_pose.SyntheticPose])
def test_a_builder_of_an_unprepared_dataset_leaves_no_temporary_dir(
    builder_class, tmp_path):
  before = _tfds_temporary_dirs()
  builder = builder_class(data_dir=str(tmp_path))
  assert not builder.is_prepared()
  assert builder.info.features['joints'].shape[1] == 2
  # TFDS's own lookup on its bucket would leave one behind here.
  assert _tfds_temporary_dirs() == before


def test_dataset_info_is_the_builders_own(tmp_path):
  builder = synthetic_pose.SyntheticPose(data_dir=str(tmp_path))
  info = features.dataset_info(builder, description='a test dataset',
                               features=features.pose_features(3))
  assert info.description == 'a test dataset'
  assert info.full_name == builder.info.full_name
  assert info.features['visible'].shape == (3,)
