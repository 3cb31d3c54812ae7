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


def _nan_batch(size):
  batch = _batch(size, seed=3)
  batch['targets'][0, 0, 0, 0] = np.nan  # one device's loss is NaN
  return batch


def test_a_nonfinite_step_is_flagged_on_every_device():
  replicated = jax_utils.replicate(_state(_model()))
  _, metrics = _coarse_step()(replicated, steps.shard(_batch(8)))
  np.testing.assert_array_equal(metrics['finite'], [1.0, 1.0])
  replicated = jax_utils.replicate(_state(_model()))
  _, metrics = _coarse_step()(replicated, steps.shard(_nan_batch(8)))
  np.testing.assert_array_equal(metrics['finite'], [0.0, 0.0])


def test_skip_nonfinite_keeps_parameters_and_optimiser_state():
  state = _state(_model())
  skip_step = steps.make_train_step('coarse', is_cascade=False,
                                    fine_loss_weight=0.1, skip_nonfinite=True)
  replicated, _ = skip_step(jax_utils.replicate(state), steps.shard(_batch(8)))
  before = jax_utils.unreplicate(replicated)
  replicated, metrics = skip_step(replicated, steps.shard(_nan_batch(8)))
  after = jax_utils.unreplicate(replicated)
  np.testing.assert_array_equal(metrics['finite'], [0.0, 0.0])
  chex.assert_trees_all_equal(after.params, before.params)
  chex.assert_trees_all_equal(after.opt_state, before.opt_state)
  assert int(after.step) == int(before.step) + 1
  # Without the option the same step poisons the parameters.
  replicated, _ = _coarse_step()(jax_utils.replicate(before),
                                 steps.shard(_nan_batch(8)))
  poisoned = jax_utils.unreplicate(replicated).params
  assert not all(np.isfinite(x).all() for x in jax.tree.leaves(poisoned))


def test_replicate_places_state_as_the_step_returns_it():
  # Same placement in and out: pmap traces the step once, not twice.
  state = _state(_model())
  replicated = steps.replicate(state)
  chex.assert_trees_all_equal(jax_utils.unreplicate(replicated).params,
                              state.params)
  stepped, _ = _coarse_step()(replicated, steps.shard(_batch(8)))
  assert ([x.sharding for x in jax.tree.leaves(steps.replicate(state))]
          == [x.sharding for x in jax.tree.leaves(stepped)])
