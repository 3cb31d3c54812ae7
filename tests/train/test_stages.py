"""Training stages: schedule, frozen parts, and resuming anywhere in it."""

import shutil

import chex
from flax import jax_utils
import jax
import ml_collections
import numpy as np
import pytest

from cascade_jax.train import checkpoint
from cascade_jax.train import loop
from cascade_jax.train import stages
from cascade_jax.train import state as state_lib
from cascade_jax.train import steps
from configs import synthetic
from tests import conftest


def _train_config(**stage_steps):
  config = synthetic.get_config().train
  config.stage_steps = ml_collections.ConfigDict(stage_steps)
  config.warmup_steps = 0
  return config


def test_plan_lays_stages_end_to_end_and_skips_empty_ones():
  plan = stages.plan(_train_config(coarse=5, fine=0, joint=3), True)
  assert [(s.name, s.begin, s.end) for s in plan] == [('coarse', 0, 5),
                                                      ('joint', 5, 8)]
  assert stages.total_steps(plan) == 8
  assert stages.stage_of(plan, 0).name == 'coarse'
  assert stages.stage_of(plan, 5).name == 'coarse'  # its last step
  assert stages.stage_of(plan, 6).name == 'joint'


def test_plan_rejects_fine_stages_without_a_fine_model_and_bad_names():
  with pytest.raises(ValueError, match="model.name='cascade'"):
    stages.plan(_train_config(coarse=5, fine=2, joint=0), False)
  with pytest.raises(ValueError, match='unknown stages'):
    stages.plan(_train_config(coarse=5, finetune=2), True)
  with pytest.raises(ValueError, match='nothing to train'):
    stages.plan(_train_config(coarse=0), True)


def _cascade_state(train_config, stage):
  state = state_lib.create_train_state(conftest.three_joint_cascade(),
                                       (1, 64, 64, 3),
                                       jax.random.PRNGKey(0))
  return stages.enter(state, train_config, stage)


def _batch(size=4):
  rng = np.random.default_rng(0)
  return {'image': rng.integers(0, 256, (size, 64, 64, 3), dtype=np.uint8),
          'targets': rng.random((size, 8, 8, 3)).astype(np.float32),
          'target_weights': np.ones((size, 3), np.float32),
          'joints': rng.uniform(8, 56, (size, 3, 2)).astype(np.float32),
          'visible': np.ones((size, 3), bool)}


def _changed(before, after):
  """{subtree: whether any parameter of it changed}."""
  return {name: any(jax.tree.leaves(jax.tree.map(
      lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
      before[name], after[name]))) for name in before}


@pytest.mark.parametrize('stage_name, expected', [
    ('coarse', {'coarse': True, 'fine': False}),
    ('fine', {'coarse': False, 'fine': True}),
    ('joint', {'coarse': True, 'fine': True}),
])
def test_each_stage_trains_exactly_its_parts(stage_name, expected):
  train_config = _train_config(coarse=2, fine=2, joint=2)
  stage = next(s for s in stages.plan(train_config, True)
               if s.name == stage_name)
  state = _cascade_state(train_config, stage)
  # Start mid-schedule so the learning rate is not zero.
  state = state.replace(step=stage.begin + 1)
  replicated = jax_utils.replicate(state, devices=jax.local_devices()[:1])
  train_step = steps.make_train_step(stage_name, True, 0.1)
  for _ in range(2):
    replicated, metrics = train_step(replicated, steps.shard(_batch(), 1))
  after = jax.tree.map(lambda x: x[0], replicated.params)
  assert _changed(state.params, after) == expected
  assert np.isfinite(metrics['loss']).all()


@pytest.mark.slow
def test_one_run_goes_through_all_stages_and_resumes_anywhere(tmp_path):
  config = synthetic.get_config()
  config.data.data_dir = str(tmp_path / 'tfds')
  config.data.image_size = (64, 64)
  config.data.input_size = (64, 64)
  config.data.num_train, config.data.num_test = 16, 4
  config.data.worker_count = 0
  config.model.name = 'cascade'
  config.model.bank_widths, config.model.head_widths = (4, 4, 4, 8), (8, 8)
  config.model.fine_bank_widths, config.model.fine_hidden_width = (4, 4), 8
  config.train.stage_steps = ml_collections.ConfigDict(
      {'coarse': 2, 'fine': 2, 'joint': 2})
  config.train.batch_size = 2
  config.train.warmup_steps = 0
  config.train.checkpoint_every = 1
  config.train.keep_checkpoints = 10
  straight = loop.train_and_evaluate(config, str(tmp_path / 'straight'))
  assert int(straight.step) == 6

  # A run that stopped after step 3 (inside the fine stage) and one that
  # stopped exactly at the end of the coarse stage, both resumed.
  for stop in (3, 2):
    workdir = tmp_path / f'resumed{stop}'
    shutil.copytree(tmp_path / 'straight', workdir)
    for step in range(stop + 1, 7):
      shutil.rmtree(workdir / 'checkpoints' / str(step))
    assert checkpoint.make_manager(str(workdir)).latest_step() == stop
    resumed = loop.train_and_evaluate(config, str(workdir))
    chex.assert_trees_all_close(resumed.params, straight.params, atol=1e-6)


def _spatial_cascade_state(train_config, stage):
  state = state_lib.create_train_state(conftest.three_joint_cascade(True),
                                       (1, 64, 64, 3),
                                       jax.random.PRNGKey(0))
  return stages.enter(state, train_config, stage)


def _spatial_steps(train_config, stage_name, spatial_loss_weight=0.0):
  """(params before, params after two steps of ``stage_name``, metrics)."""
  stage = next(s for s in stages.plan(train_config, True)
               if s.name == stage_name)
  state = _spatial_cascade_state(train_config, stage)
  state = state.replace(step=stage.begin + 1)
  replicated = jax_utils.replicate(state, devices=jax.local_devices()[:1])
  train_step = steps.make_train_step(stage_name, True, 0.1,
                                     spatial_loss_weight)
  batch = dict(_batch(), torso=np.full((4, 2), 31.5, np.float32))
  for _ in range(2):
    replicated, metrics = train_step(replicated, steps.shard(batch, 1))
  return state.params, jax.tree.map(lambda x: x[0], replicated.params), metrics


@pytest.mark.parametrize('stage_name, spatial_loss_weight, expected', [
    ('coarse', 0.0, {'coarse': True, 'fine': False, 'spatial': False}),
    ('spatial', 0.0, {'coarse': False, 'fine': False, 'spatial': True}),
    ('fine', 0.0, {'coarse': False, 'fine': True, 'spatial': False}),
    ('joint', 0.0, {'coarse': True, 'fine': True, 'spatial': False}),
    ('joint', 0.5, {'coarse': True, 'fine': True, 'spatial': True}),
])
def test_spatial_model_trains_in_its_stage_or_jointly_by_config(
    stage_name, spatial_loss_weight, expected):
  train_config = _train_config(coarse=2, spatial=2, fine=2, joint=2)
  train_config.spatial_loss_weight = spatial_loss_weight
  before, after, metrics = _spatial_steps(train_config, stage_name,
                                          spatial_loss_weight)
  assert _changed(before, after) == expected
  assert np.isfinite(metrics['e3']).all()
  if stage_name == 'spatial':
    np.testing.assert_allclose(metrics['loss'], metrics['e3'])


@pytest.mark.parametrize('stage_name, spatial_loss_weight',
                         [('spatial', 0.0), ('joint', 0.5)])
def test_the_mrf_choice_of_joints_is_never_trained(stage_name,
                                                   spatial_loss_weight):
  """'active' is set by `spatial_choice` after the stage, not by the
  optimiser: weight decay (large here) would pull it from 1 otherwise."""
  train_config = _train_config(coarse=2, spatial=2, fine=2, joint=2)
  train_config.spatial_loss_weight = spatial_loss_weight
  train_config.weight_decay = 0.5
  train_config.spatial_learning_rate = 0.1
  before, after, _ = _spatial_steps(train_config, stage_name,
                                    spatial_loss_weight)
  np.testing.assert_array_equal(after['spatial']['active'], np.ones(3))
  assert _changed(before, after)['spatial']


def test_spatial_stage_comes_before_the_fine_stage_and_has_its_own_rate():
  train_config = _train_config(coarse=2, spatial=2, fine=2, joint=2)
  assert [s.name for s in stages.plan(train_config, True)] == [
      'coarse', 'spatial', 'fine', 'joint']
  before, plain, _ = _spatial_steps(train_config, 'spatial')
  train_config.spatial_learning_rate = 100 * train_config.learning_rate
  _, faster, _ = _spatial_steps(train_config, 'spatial')
  moved = lambda after: float(np.abs(after['spatial']['biases']
                                     - before['spatial']['biases']).max())
  assert moved(faster) > 20 * moved(plain) > 0


def test_joint_and_spatial_stages_peak_at_their_own_rates_when_set():
  train_config = _train_config(coarse=2, spatial=2, fine=2, joint=2)
  train_config.learning_rate = 2e-3
  train_config.spatial_learning_rate = 0.0
  train_config.joint_learning_rate = 0.0
  for name in stages.STAGES:  # 0 means: the stage's learning_rate.
    assert stages.peak_learning_rate(train_config, name) == 2e-3
  train_config.spatial_learning_rate = 5e-2
  train_config.joint_learning_rate = 6e-4
  assert [stages.peak_learning_rate(train_config, name)
          for name in stages.STAGES] == [2e-3, 5e-2, 2e-3, 6e-4]


def test_spatial_stage_without_a_spatial_model_is_rejected():
  train_config = _train_config(coarse=2, spatial=2)
  stage = stages.plan(train_config, True)[1]
  state = _cascade_state(train_config, stage)
  replicated = jax_utils.replicate(state, devices=jax.local_devices()[:1])
  with pytest.raises(ValueError, match='model.spatial.enabled'):
    steps.make_train_step('spatial', True, 0.1)(replicated,
                                                steps.shard(_batch(), 1))
