"""Checkpoint evaluation on a real-dataset builder writes official predictions."""

import ml_collections
import numpy as np
import pytest
import scipy.io

from cascade_jax.eval import evaluate
from cascade_jax.train import loop
from configs import synthetic
from tests.data import fixtures


@pytest.mark.slow
def test_lsp_evaluation_writes_one_based_official_predictions(tmp_path):
  manual = tmp_path / 'manual'
  fixtures.write_lsp(manual / 'lsp_dataset', fixtures.lsp_joints(2000), 4)
  config = synthetic.get_config()
  config.data = ml_collections.ConfigDict(dict(
      config.data.to_dict(), name='lsp', builder_config='lsp',
      data_dir=str(tmp_path / 'tfds'), manual_dir=str(manual),
      crop_center='person_center', box_scale=1.25, input_size=(32, 32),
      worker_count=0))
  config.model.bank_widths, config.model.head_widths = (2, 2, 2, 4), (4, 4)
  config.model.name = 'coarse'
  config.train.stage_steps.update(coarse=1, fine=0, joint=0)
  config.train.batch_size = 2
  config.eval.batch_size = 250
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(config, workdir)
  evaluate.evaluate_checkpoint(config, workdir)

  predictions = np.load(f'{workdir}/eval/predictions.npz')
  official = scipy.io.loadmat(f'{workdir}/eval/lsp_predictions.mat')['pred']
  assert official.shape == (2, 14, 1000)  # 2 x J x N, the LSP layout
  np.testing.assert_allclose(official.transpose(2, 1, 0),
                             predictions['coarse'] + 1, rtol=1e-6)
  # Ground truth in the original 1-based file equals ours + 1.
  labels = scipy.io.loadmat(str(manual / 'lsp_dataset' / 'joints.mat'))
  np.testing.assert_allclose(labels['joints'][:2, :, 1000:].transpose(2, 1, 0),
                             predictions['gt'] + 1, rtol=1e-5)
