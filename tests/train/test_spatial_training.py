"""End to end: a trained cascade gets the spatial model, trains only its stage,
then evaluates and predicts with and without it."""

import json
import re

import chex
import numpy as np
import pytest

import cascade_jax
from cascade_jax.data import datasets
from cascade_jax.eval import evaluate
from cascade_jax.model import spatial
from cascade_jax.model import spatial_kernels
from cascade_jax.train import checkpoint
from cascade_jax.train import loop
from cascade_jax.train import spatial_choice


@pytest.mark.slow
def test_spatial_stage_from_a_trained_cascade(tiny_cascade, tmp_path):
  cascade_workdir, cascade_config = tiny_cascade
  config = cascade_config.copy_and_resolve_references()
  config.model.spatial = spatial.default_config(
      kernel_file=str(tmp_path / 'kernels.npz'), torso_key='torso_center')
  config.train.stage_steps.coarse = 0
  config.train.stage_steps.fine = 0
  config.train.stage_steps.joint = 0
  config.train.stage_steps.spatial = 2
  config.train.spatial_learning_rate = 0.05
  config.train.init_from = cascade_workdir
  config.train.spatial_choice_split = 'train[:4]'
  kernels, graph, count = spatial_kernels.from_training_split(config)
  spatial_kernels.save(config.model.spatial.kernel_file, kernels, graph,
                       config.model.pooling, count)

  workdir = str(tmp_path / 'spatial')
  state = loop.train_and_evaluate(config, workdir)
  trained_cascade = checkpoint.restore_params(cascade_workdir)
  # The ConvNets are frozen; the MRF's pairwise terms started at weight 0
  # (its output the coarse heat-maps) and grew: the torso message varies over
  # every map, so each torso pair's weight has a gradient from the start.
  # (Warm-up makes step 1's rate 0: the weights move at step 2.)
  chex.assert_trees_all_close(
      {k: state.params[k] for k in ('coarse', 'fine')}, trained_cascade)
  weights = np.asarray(state.params['spatial']['weights'])
  assert np.abs(weights[graph[:, 1] == graph.max()]).min() > 0
  # The choice of joints at the end of the stage and its confirmation on
  # the cascade's answers at the end of training (here the same step),
  # recorded and applied.
  with open(f'{workdir}/{spatial_choice.RESULT_FILE}') as f:
    record = json.load(f)
  passed = lambda test: np.array([
      better > worse and p <= test['level'] for better, worse, p in zip(
          test['better'], test['worse'], test['p_value'])])
  choice, confirmation = record['spatial_stage'], record['end_of_training']
  assert (choice['split'], choice['examples']) == ('train[:4]', 4)
  assert (choice['method'], confirmation['method']) == ('spatial', 'cascade')
  np.testing.assert_array_equal(choice['active'], passed(choice))
  active = np.array(record['active'])
  np.testing.assert_array_equal(active,
                                passed(choice) & passed(confirmation))
  np.testing.assert_array_equal(state.params['spatial']['active'], active)
  assert not active.all()  # two steps from the identity: mostly ties
  assert (confirmation['split'], confirmation['examples']) == ('train[:4]', 4)

  # Evaluation and prediction restore the MRF: no kernel file needed.
  (tmp_path / 'kernels.npz').unlink()
  results = evaluate.evaluate_checkpoint(config, workdir)
  assert list(results['methods']) == ['coarse', 'coarse_quarter',
                                      'coarse_dark', 'spatial',
                                      'cascade_no_spatial', 'cascade']
  with_spatial = np.load(f'{workdir}/eval/predictions.npz')
  evaluate.evaluate_checkpoint(cascade_config, cascade_workdir)
  without = np.load(f'{cascade_workdir}/eval/predictions.npz')
  # Without the MRF the windows are where the plain cascade cuts them.
  np.testing.assert_allclose(with_spatial['cascade_no_spatial'],
                             without['cascade'], atol=1e-4)
  np.testing.assert_allclose(with_spatial['coarse'], without['coarse'],
                             atol=1e-4)
  # Where the MRF steps aside its answer is the coarse argmax, exactly.
  assert results['mrf_steps_aside'] == [
      name for name, keep in zip(choice['joints'], active) if not keep]
  np.testing.assert_array_equal(with_spatial['spatial'][:, ~active],
                                with_spatial['coarse'][:, ~active])

  predictor = cascade_jax.Predictor.from_checkpoint(workdir, batch_size=4)
  source, _ = datasets.load_split(config.data, 'test')
  records = [source[i] for i in range(len(source))]
  got = predictor.predict_crops([r['image'] for r in records],
                                [r['torso_center'] for r in records],
                                [r['person_scale'] for r in records])
  np.testing.assert_allclose(np.stack([p.joints for p in got]),
                             with_spatial['cascade'], atol=1e-3)


def _with_spatial_stage(cascade_config, tmp_path):
  """The tiny cascade's config with an MRF (kernels written) and a 2-step
  spatial stage after its other stages."""
  config = cascade_config.copy_and_resolve_references()
  config.model.spatial = spatial.default_config(
      kernel_file=str(tmp_path / 'kernels.npz'), torso_key='torso_center')
  config.train.stage_steps.spatial = 2
  kernels, graph, count = spatial_kernels.from_training_split(config)
  spatial_kernels.save(config.model.spatial.kernel_file, kernels, graph,
                       config.model.pooling, count)
  return config


def test_a_choice_split_that_cannot_be_read_fails_before_training(
    tiny_cascade, tmp_path):
  config = _with_spatial_stage(tiny_cascade[1], tmp_path)
  config.train.spatial_choice_split = 'train[:400]'  # the data has 8
  workdir = tmp_path / 'spatial'
  with pytest.raises(ValueError, match=r"train.spatial_choice_split='train"
                     r"\[:400\]'.*cannot be read"):
    loop.train_and_evaluate(config, str(workdir))
  assert not list(workdir.glob('checkpoints/*'))  # nothing trained


@pytest.mark.parametrize('init_from, train_split, choice_split, refused', [
    # This run trains on 2 of the 4 images it would choose on.
    (False, 'train[2:]', 'train[:4]',
     r"overlaps 'train\[2:\]', this run's data.train_split \(shared images: "
     r"2\)"),
    # This run trains on none of them, the cascade it starts from
    # ('train[4:]') on 1.
    (True, 'train[5:]', 'train[:5]',
     r"overlaps 'train\[4:\]', the data.train_split of train.init_from='.*' "
     r"\(shared images: 1\)"),
])
def test_a_choice_split_the_model_trained_on_fails_before_training(
    tiny_cascade, tmp_path, init_from, train_split, choice_split, refused):
  config = _with_spatial_stage(tiny_cascade[1], tmp_path)
  if init_from:
    config.train.init_from = tiny_cascade[0]
  config.data.train_split = train_split
  config.train.spatial_choice_split = choice_split
  workdir = tmp_path / 'spatial'
  with pytest.raises(ValueError,
                     match=f"'{re.escape(choice_split)}' " + refused):
    loop.train_and_evaluate(config, str(workdir))
  assert not list(workdir.glob('checkpoints/*'))  # nothing trained
