"""create_train_state: the parameters of the model's own initialisers."""

import functools

import chex
import jax
import jax.numpy as jnp

from cascade_jax.train import state as state_lib
from tests import conftest


def test_parameters_equal_the_model_init_compiled_as_usual_bit_for_bit():
  """The init is compiled at a lower LLVM level on CPU (faster to compile);
  its parameters must be those of the default compilation exactly."""
  model = conftest.three_joint_cascade(with_spatial=True)
  key = jax.random.PRNGKey(3)
  state = state_lib.create_train_state(model, (1, 64, 64, 3), key)
  init_key, _ = jax.random.split(key)
  expected = jax.jit(functools.partial(model.init, train=False))(
      init_key, jnp.zeros((1, 64, 64, 3)), torso=jnp.zeros((1, 2)))['params']
  chex.assert_trees_all_equal(state.params, expected)
  assert set(state.params) == {'coarse', 'fine', 'spatial'}
