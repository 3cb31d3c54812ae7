"""Pure train / eval / predict steps, wrapped once per stage in jax.pmap.

A batch arrives with a leading device axis: [devices, per_device, ...].
Gradients and metrics are averaged over devices with lax.pmean; as the losses
are means over equal-sized per-device batches, a step on N devices equals the
step on one device over the same global batch.

Objectives by stage (paper Secs. 3.3, 4.2), for a coarse-only or a cascade:
  coarse:  E1 on the coarse heat-maps;
  spatial: E3 on the spatial model's marginals, coarse parameters held
           constant (and run without dropout, as at inference);
  fine:    E2 on the fine heat-maps, coarse parameters held constant (and
           run without dropout);
  joint:   E1 + fine_loss_weight * E2 (+ spatial_loss_weight * E3).
A cascade with a spatial model takes the batch's 'torso' [B, 2].
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from cascade_jax import inference
from cascade_jax.model import fine
from cascade_jax.model import losses
from cascade_jax.model import spatial
from cascade_jax.train.state import TrainState

AXIS = 'batch'


def _images(batch):
  """uint8 images -> float32 in [0, 1] (uint8 keeps host->device traffic small)."""
  return batch['image'].astype(jnp.float32) / 255.0


def objective(params, batch, dropout_key, *, apply_fn, stage: str,
              is_cascade: bool, fine_loss_weight: float,
              spatial_loss_weight: float = 0.0, fine_mask_outside: bool = False,
              train: bool = True):
  """The loss of ``stage`` and its parts, as (loss, {'e1': ..[, 'e2': ..]
  [, 'e3': ..]}), 'e3' for a cascade with a spatial model.

  E2 follows paper eq. 2 (windows without their joint have all-zero
  targets) unless ``fine_mask_outside`` (``fine.fine_targets``). With
  ``train`` False dropout is off and no key is needed (evaluation).
  """
  rngs = {'dropout': dropout_key} if train else None
  if not is_cascade:
    predicted = apply_fn({'params': params}, _images(batch), train=train,
                         rngs=rngs)
    e1 = losses.heatmap_loss(predicted, batch['targets'],
                             batch['target_weights'])
    return e1, {'e1': e1}
  frozen_coarse = stage in ('spatial', 'fine')
  if frozen_coarse:
    params = {**params, 'coarse': jax.lax.stop_gradient(params['coarse'])}
  outputs = apply_fn({'params': params}, _images(batch),
                     train=train and not frozen_coarse, rngs=rngs,
                     **_torso(batch))
  e1 = losses.heatmap_loss(outputs.coarse_heatmaps, batch['targets'],
                           batch['target_weights'])
  parts = {'e1': e1}
  if outputs.spatial_heatmaps is not None:
    parts['e3'] = spatial.spatial_loss(outputs.spatial_heatmaps,
                                       batch['targets'],
                                       batch['target_weights'])
  elif stage == 'spatial' or spatial_loss_weight:
    raise ValueError('the spatial stage and train.spatial_loss_weight need a '
                     'spatial model: set model.spatial.enabled')
  # The fine branch is dead code in these two stages: XLA drops it.
  if stage == 'coarse':
    return e1, parts
  if stage == 'spatial':
    return parts['e3'], parts
  context = outputs.fine_heatmaps.shape[1]
  fine_targets, fine_weights = fine.fine_targets(
      batch['joints'], batch['visible'], outputs.window_origins, context,
      mask_outside=fine_mask_outside)
  e2 = losses.heatmap_loss(outputs.fine_heatmaps, fine_targets, fine_weights)
  parts['e2'] = e2
  if stage == 'fine':
    return e2, parts
  loss = e1 + fine_loss_weight * e2
  if spatial_loss_weight:
    loss = loss + spatial_loss_weight * parts['e3']
  return loss, parts


def _torso(batch) -> dict:
  """The model's 'torso' input when the batch carries one (spatial model)."""
  return {'torso': batch['torso']} if 'torso' in batch else {}


def train_step(state: TrainState, batch, *, stage: str, is_cascade: bool,
               fine_loss_weight: float = 0.1, spatial_loss_weight: float = 0.0,
               fine_mask_outside: bool = False, skip_nonfinite: bool = False
               ) -> tuple[TrainState, dict]:
  """One optimiser step on ``stage``'s objective; metrics pmean-ed.

  metrics['finite'] is 1.0 when the loss and the gradients' global norm are
  finite on every device, else 0.0 (pmean-ed, so every device agrees). With
  ``skip_nonfinite`` a non-finite step keeps the parameters and optimiser
  state (chosen on device, no host round-trip) and only advances the step.
  """
  dropout_key = jax.random.fold_in(
      jax.random.fold_in(state.key, state.step), jax.lax.axis_index(AXIS))
  loss_fn = functools.partial(objective, apply_fn=state.apply_fn, stage=stage,
                              is_cascade=is_cascade,
                              fine_loss_weight=fine_loss_weight,
                              spatial_loss_weight=spatial_loss_weight,
                              fine_mask_outside=fine_mask_outside)
  (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params, batch, dropout_key)
  grads = jax.lax.pmean(grads, AXIS)
  metrics = {'loss': loss, 'grad_norm': _global_norm(grads), **parts}
  metrics = jax.lax.pmean(metrics, AXIS)
  # An Inf loss on one device makes the pmean-ed loss non-finite everywhere;
  # a NaN or Inf gradient makes the norm non-finite (as does a norm that
  # overflows float32: gradients beyond 1e19 have diverged anyway).
  finite = jnp.isfinite(metrics['loss']) & jnp.isfinite(metrics['grad_norm'])
  metrics['finite'] = finite.astype(jnp.float32)
  updated = state.apply_gradients(grads=grads)
  if skip_nonfinite:
    keep = lambda new, old: jnp.where(finite, new, old)
    updated = updated.replace(
        params=jax.tree.map(keep, updated.params, state.params),
        opt_state=jax.tree.map(keep, updated.opt_state, state.opt_state))
  return updated, metrics


def make_train_step(stage: str, is_cascade: bool, fine_loss_weight: float,
                    spatial_loss_weight: float = 0.0,
                    fine_mask_outside: bool = False,
                    skip_nonfinite: bool = False):
  """``train_step`` for one stage, pmapped over 'batch', state donated."""
  return jax.pmap(
      functools.partial(train_step, stage=stage, is_cascade=is_cascade,
                        fine_loss_weight=fine_loss_weight,
                        spatial_loss_weight=spatial_loss_weight,
                        fine_mask_outside=fine_mask_outside,
                        skip_nonfinite=skip_nonfinite),
      axis_name=AXIS, donate_argnums=(0,))


def eval_step(state: TrainState, batch, *, is_cascade: bool) -> dict:
  """E1 (and E2 for a cascade, E3 with a spatial model) without dropout,
  averaged over devices."""
  _, parts = objective(state.params, batch, None, apply_fn=state.apply_fn,
                       stage='joint', is_cascade=is_cascade,
                       fine_loss_weight=0.0, train=False)
  return jax.lax.pmean(parts, AXIS)


@functools.lru_cache(maxsize=None)
def make_eval_step(is_cascade: bool):
  """``eval_step`` pmapped over 'batch'; cached, so periodic evaluations
  reuse one compiled function."""
  return jax.pmap(functools.partial(eval_step, is_cascade=is_cascade),
                  axis_name=AXIS)


def predict_step(state: TrainState, batch, *, is_cascade: bool,
                 stride: int, subpixel: bool, fusion: str = 'fine',
                 fine_min_peak: float = 0.0, cell_margin: float = 0.0,
                 coarse_power: float = 1.0,
                 flip_permutation: tuple[int, ...] | None = None) -> dict:
  """Joint predictions in input pixels for the host-side evaluation:
  `inference.predict` (the Predictor's forward pass too) on the batch's
  images (and 'torso' for a spatial model), [per_device, J, 2] joints and
  [per_device, J] scores. ``flip_permutation`` (the joint set's) runs the
  flip test."""
  return inference.predict(
      state.apply_fn, state.params, _images(batch), batch.get('torso'),
      is_cascade=is_cascade, stride=stride, subpixel=subpixel, fusion=fusion,
      fine_min_peak=fine_min_peak, cell_margin=cell_margin,
      coarse_power=coarse_power, flip_permutation=flip_permutation)


def _global_norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def replicate(tree):
  """A copy of ``tree`` on every local device, [devices, ...], placed as the
  pmapped steps place their outputs (mesh axis 'batch'): flax's
  jax_utils.replicate names the axis otherwise, and pmap then traces and
  compiles every step function twice, for the first step and the rest."""
  devices = jax.local_devices()
  sharding = jax.sharding.NamedSharding(
      jax.sharding.Mesh(np.array(devices), (AXIS,)),
      jax.sharding.PartitionSpec(AXIS))
  return jax.tree.map(
      lambda x: jax.device_put(
          np.broadcast_to(np.asarray(x), (len(devices),) + np.shape(x)),
          sharding), tree)


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
