"""Pure train / eval / predict steps, wrapped once in jax.pmap over 'batch'.

A batch arrives with a leading device axis: [devices, per_device, ...].
Gradients and metrics are averaged over devices with lax.pmean, so a step on
N devices equals the step on one device over the same global batch (the loss
is a mean over equal-sized per-device batches).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp

from cascade_jax.model import losses
from cascade_jax.train.state import TrainState

AXIS = 'batch'


def _images(batch):
  """uint8 images -> float32 in [0, 1] (uint8 keeps host->device traffic small)."""
  return batch['image'].astype(jnp.float32) / 255.0


def train_step(state: TrainState, batch) -> tuple[TrainState, dict]:
  """One optimiser step on E1; returns the new state and pmean-ed metrics."""
  dropout_key = jax.random.fold_in(
      jax.random.fold_in(state.key, state.step), jax.lax.axis_index(AXIS))

  def loss_fn(params):
    predicted = state.apply_fn({'params': params}, _images(batch), train=True,
                               rngs={'dropout': dropout_key})
    return losses.heatmap_loss(predicted, batch['targets'],
                               batch['target_weights'])

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  grads = jax.lax.pmean(grads, AXIS)
  metrics = {'loss': loss, 'grad_norm': _global_norm(grads)}
  metrics = jax.lax.pmean(metrics, AXIS)
  return state.apply_gradients(grads=grads), metrics


def eval_step(state: TrainState, batch) -> dict:
  """E1 on a batch without dropout, averaged over devices."""
  predicted = state.apply_fn({'params': state.params}, _images(batch),
                             train=False)
  loss = losses.heatmap_loss(predicted, batch['targets'],
                             batch['target_weights'])
  return jax.lax.pmean({'loss': loss}, AXIS)


def predict_step(state: TrainState, batch) -> jax.Array:
  """Coarse heat-maps [per_device, h, w, J] for evaluation on the host."""
  return state.apply_fn({'params': state.params}, _images(batch), train=False)


def _global_norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


p_train_step = jax.pmap(train_step, axis_name=AXIS, donate_argnums=(0,))
p_eval_step = jax.pmap(eval_step, axis_name=AXIS)
p_predict_step = jax.pmap(predict_step, axis_name=AXIS)


def shard(batch, num_devices: int | None = None):
  """[B, ...] host arrays -> [devices, B / devices, ...]; B must divide."""
  num_devices = num_devices or jax.local_device_count()

  def reshape(x):
    if x.shape[0] % num_devices:
      raise ValueError(f'batch of {x.shape[0]} does not split over '
                       f'{num_devices} devices; choose a batch size that is a '
                       'multiple of the device count')
    return x.reshape((num_devices, x.shape[0] // num_devices) + x.shape[1:])

  return jax.tree.map(reshape, batch)
