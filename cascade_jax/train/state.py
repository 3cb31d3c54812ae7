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


def _init_compiler_options() -> dict[str, Any] | None:
  """On CPU, the initialisers' code is compiled with LLVM at -O2, not -O3.

  It is random-bit generation and erf_inv for every parameter, run once: at
  -O3 it took 5.9 s to compile for the demo's cascade and at -O2 2.0 s (4.7 ->
  2.5 s for the paper-size FLIC cascade), giving the same parameters bit for
  bit in all ten configs (tests/train/test_state.py checks a cascade with
  an MRF).
  """
  if jax.default_backend() != 'cpu':
    return None
  return {'xla_backend_optimization_level': 2}


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
  init = jax.jit(functools.partial(model.init, train=False),
                 compiler_options=_init_compiler_options())
  params = init(init_key, jnp.zeros(input_shape, jnp.float32),
                **inputs)['params']
  return TrainState.create(apply_fn=model.apply, params=params,
                           tx=tx or optax.identity(), key=run_key)


def parameter_count(params: Any) -> int:
  return sum(x.size for x in jax.tree.leaves(params))
