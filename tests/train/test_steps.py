"""pmap train step: N devices equal one device on the same global batch."""

import chex
from flax import jax_utils
import jax
import ml_collections
import numpy as np

from cascade_jax.model import coarse
from cascade_jax.train import stages
from cascade_jax.train import state as state_lib
from cascade_jax.train import steps


def _state(model, **overrides):
  config = ml_collections.ConfigDict(dict(
      optimizer='sgd', learning_rate=1e-3, warmup_steps=0,
      weight_decay=1e-4, grad_clip_norm=0.0))
  config.update(overrides)
  return state_lib.create_train_state(model, (1, 64, 64, 3),
                                      jax.random.PRNGKey(0),
                                      stages.make_optimizer(config, 10))


def _coarse_step():
  return steps.make_train_step('coarse', is_cascade=False,
                               fine_loss_weight=0.1)


def _model(dropout_rate=0.0):
  return coarse.CoarseHeatmapModel(num_joints=3, pooling=8,
                                   bank_widths=(4, 4, 4, 8), head_widths=(8, 8),
                                   dropout_rate=dropout_rate)


def _batch(size, seed=0):
  rng = np.random.default_rng(seed)
  weights = (rng.random((size, 3)) > 0.3).astype(np.float32)
  return {'image': rng.integers(0, 256, (size, 64, 64, 3), dtype=np.uint8),
          'targets': rng.random((size, 8, 8, 3)).astype(np.float32),
          'target_weights': weights}


def _one_step(num_devices, batch, model=None):
  state = _state(model or _model())
  replicated = jax_utils.replicate(state, devices=jax.local_devices()[:num_devices])
  replicated, metrics = _coarse_step()(replicated,
                                       steps.shard(batch, num_devices))
  first = lambda tree: jax.tree.map(lambda x: x[0], tree)
  return first(replicated), first(metrics)


def test_pmap_step_on_two_devices_equals_one_device_step():
  assert jax.local_device_count() >= 2, 'conftest forces 2 CPU devices'
  batch = _batch(8)
  single, single_metrics = _one_step(1, batch)
  double, double_metrics = _one_step(2, batch)
  chex.assert_trees_all_close(double.params, single.params, atol=1e-6,
                              rtol=1e-5)
  chex.assert_trees_all_close(double_metrics, single_metrics, rtol=1e-5)
  # The step did something: parameters moved.
  initial = _state(_model())
  moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), single.params,
                       initial.params)
  assert max(jax.tree.leaves(moved)) > 0


def test_replicas_stay_identical_with_dropout():
  batch = _batch(8, seed=1)
  model = _model(dropout_rate=0.5)
  replicated = jax_utils.replicate(_state(model))
  replicated, metrics = _coarse_step()(replicated, steps.shard(batch))
  first, second = (jax.tree.map(lambda x, i=i: x[i], replicated.params)
                   for i in range(2))
  chex.assert_trees_all_equal(first, second)
  assert np.isfinite(metrics['loss']).all()


def test_training_lowers_the_loss_on_a_fixed_batch():
  batch = _batch(4, seed=2)
  state = _state(_model(), learning_rate=3e-3)
  replicated = jax_utils.replicate(state, devices=jax.local_devices()[:1])
  sharded = steps.shard(batch, 1)
  train_step = _coarse_step()
  losses = []
  for _ in range(10):
    replicated, metrics = train_step(replicated, sharded)
    losses.append(float(metrics['loss'][0]))
  assert losses[-1] < 0.8 * losses[0], losses


def test_shard_rejects_indivisible_batches():
  import pytest  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match='multiple of the device count'):
    steps.shard({'x': np.zeros((3, 2))}, 2)
