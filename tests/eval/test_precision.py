"""Precision study: variants, error statistics, and a tiny end-to-end report."""

import os
import re

import numpy as np
import pytest

from cascade_jax.eval import evaluate
from cascade_jax.eval import precision
from configs import synthetic
from tests import conftest


def test_variant_config_applies_overrides_to_a_copy():
  base = synthetic.get_config()
  config = precision.variant_config(base, 'standard_cascade_8x')
  assert config.model.name == 'standard_cascade'
  assert config.train.stage_steps.joint == 0
  assert precision.variant_config(base, 'cascade_16x').model.pooling == 16
  assert base.to_dict() == synthetic.get_config().to_dict()  # untouched
  with pytest.raises(ValueError, match='known'):
    precision.variant_config(base, 'cascade_2x')


def test_sigma_drops_outliers_and_limit_scales_with_the_input():
  errors = np.array([-2.0, 2.0, -2.0, 2.0, 30.0])
  assert precision.sigma_without_outliers(errors, 20.0) == pytest.approx(2.0)
  assert precision.outlier_limit(240) == pytest.approx(20.0)
  assert precision.outlier_limit(96) == pytest.approx(8.0)


def test_x_errors_are_in_input_pixels_and_skip_unlabelled_joints():
  result = precision.VariantResult(
      name='x', coarse=np.array([[[12.0, 0.0], [5.0, 0.0]]]),
      coarse_quarter=np.zeros((1, 2, 2)), coarse_dark=np.zeros((1, 2, 2)),
      cascade=np.zeros((1, 2, 2)), gt=np.array([[[10.0, 3.0], [0.0, 0.0]]]),
      visible=np.array([[True, False]]), input_scale=np.array([0.5]),
      parameters=0, fine_parameters=0)
  errors = precision.x_errors(result.coarse, result)
  np.testing.assert_allclose(errors[0], [1.0])
  assert errors[1].size == 0


@pytest.mark.slow
def test_tiny_study_writes_a_report_whose_images_exist(tmp_path, monkeypatch):
  config = conftest.tiny_cascade_config(tmp_path)
  report = precision.run_study(config, str(tmp_path / 'study'),
                               ('cascade_8x', 'standard_cascade_8x'))
  text = open(report).read()
  assert 'cascade_8x coarse' in text and 'standard_cascade_8x cascade' in text
  assert 'cascade_8x coarse_dark' in text and 'Elbow@0.2' in text
  images = re.findall(r'!\[[^\]]*\]\(([^)]+)\)', text)
  assert images
  for image in images:
    assert os.path.getsize(tmp_path / 'study' / image) > 0

  # --flip reuses the trained variants, predicts with the flip test, and
  # reports to study/flip/.
  calls = []
  predict_split = evaluate.predict_split

  def spy(*args, **kwargs):
    calls.append(kwargs.get('flip'))
    return predict_split(*args, **kwargs)

  monkeypatch.setattr(evaluate, 'predict_split', spy)
  flip_report = precision.run_study(config, str(tmp_path / 'study'),
                                    ('cascade_8x',), flip=True)
  assert flip_report == str(tmp_path / 'study' / 'flip' / 'precision_study.md')
  assert calls == [True]
  assert 'flip test' in open(flip_report).read()
  assert 'flip test' not in text
