"""TrainState and its initialisation."""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
from flax.training import train_state
import jax
import jax.numpy as jnp
import optax


class TrainState(train_state.TrainState):
  """Flax TrainState plus the base PRNG key of the run (dropout is drawn from
  fold_in(key, step, device), so a resumed run draws the same masks)."""
  key: jax.Array


def create_train_state(model: nn.Module, input_shape: tuple[int, ...],
                       key: jax.Array,
                       tx: optax.GradientTransformation | None = None
                       ) -> TrainState:
  """Initialises parameters for images of ``input_shape`` [B, H, W, 3].

  Without ``tx`` the state carries an identity optimiser: enough to restore
  parameters into or to evaluate (training sets its stage's optimiser). A
  cascade with a spatial model also gets a torso position [B, 2].
  """
  init_key, run_key = jax.random.split(key)
  inputs = {}
  if getattr(model, 'spatial', None) is not None:
    inputs['torso'] = jnp.zeros((input_shape[0], 2), jnp.float32)
  # Jitted: run eagerly, init dispatches every op of the model one by one
  # (seconds for the paper-size model, most of a short test's run time).
  init = jax.jit(functools.partial(model.init, train=False))
  params = init(init_key, jnp.zeros(input_shape, jnp.float32),
                **inputs)['params']
  return TrainState.create(apply_fn=model.apply, params=params,
                           tx=tx or optax.identity(), key=run_key)


def parameter_count(params: Any) -> int:
  return sum(x.size for x in jax.tree.leaves(params))
