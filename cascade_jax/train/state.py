"""TrainState, optimiser and learning-rate schedule, built from the config."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import optax


class TrainState(train_state.TrainState):
  """Flax TrainState plus the base PRNG key of the run (dropout is drawn from
  fold_in(key, step, device), so a resumed run draws the same masks)."""
  key: jax.Array


def learning_rate_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warm-up to ``learning_rate`` then cosine decay to zero at ``steps``."""
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0,
      peak_value=config.learning_rate,
      warmup_steps=config.warmup_steps,
      decay_steps=max(config.steps, config.warmup_steps + 1),
      end_value=0.0)


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The optimiser named by ``config.optimizer`` ('adam' or 'sgd', momentum 0.9)."""
  schedule = learning_rate_schedule(config)
  if config.optimizer == 'adam':
    optimizer = optax.adamw(schedule, weight_decay=config.weight_decay)
  elif config.optimizer == 'sgd':
    optimizer = optax.chain(optax.add_decayed_weights(config.weight_decay),
                            optax.sgd(schedule, momentum=0.9, nesterov=True))
  else:
    raise ValueError(f"train.optimizer must be 'adam' or 'sgd', got "
                     f'{config.optimizer!r}')
  if config.grad_clip_norm:
    optimizer = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm),
                            optimizer)
  return optimizer


def create_train_state(model: nn.Module, train_config: ml_collections.ConfigDict,
                       input_shape: tuple[int, ...], key: jax.Array) -> TrainState:
  """Initialises parameters for images of ``input_shape`` [B, H, W, 3]."""
  init_key, run_key = jax.random.split(key)
  params = model.init(init_key, jnp.zeros(input_shape, jnp.float32),
                      train=False)['params']
  return TrainState.create(apply_fn=model.apply, params=params,
                           tx=make_optimizer(train_config), key=run_key)


def parameter_count(params: Any) -> int:
  return sum(x.size for x in jax.tree.leaves(params))
