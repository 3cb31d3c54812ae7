"""Orbax checkpoints of the TrainState, the data iterator and the config.

Orbax writes each step into a temporary directory and renames it when
complete, so an interrupted save never hides the previous checkpoint.
"""

from __future__ import annotations

import json
import os

from etils import epath
import flax.linen as nn
import grain.checkpoint as grain_checkpoint
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from cascade_jax.model import build
from cascade_jax.train import stages
from cascade_jax.train import state as state_lib
from cascade_jax.train.state import TrainState


def make_manager(workdir: str, keep: int = 3) -> ocp.CheckpointManager:
  """A CheckpointManager over ``workdir``/checkpoints keeping the last ``keep``."""
  directory = epath.Path(os.path.abspath(workdir)) / 'checkpoints'
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
  return ocp.CheckpointManager(directory, options=options,
                               item_names=('state', 'data', 'config'))


def save(manager: ocp.CheckpointManager, step: int, state: TrainState,
         data_iterator, config: ml_collections.ConfigDict) -> None:
  """Saves an unreplicated state, the iterator position and the config; waits.

  Every process calls it (Orbax writes the arrays once, each process its
  iterator position).
  """
  args = {'state': ocp.args.StandardSave(_global(state)),
          'config': ocp.args.JsonSave(json.loads(config.to_json()))}
  if data_iterator is not None:
    args['data'] = grain_checkpoint.CheckpointSave(data_iterator)
  manager.save(step, args=ocp.args.Composite(**args), force=True)
  manager.wait_until_finished()


def restore(manager: ocp.CheckpointManager, target: TrainState,
            data_iterator=None, step: int | None = None) -> TrainState:
  """Restores ``step`` (default: latest) into the structure of ``target``.

  The data iterator, when given, is moved to the saved position in place.
  Raises FileNotFoundError naming the directory when there is no checkpoint.
  """
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(
        f'no checkpoint in {manager.directory}: train first, or point '
        '--workdir at a training run')
  args = {'state': ocp.args.StandardRestore(_global(target, abstract=True))}
  if data_iterator is not None:
    args['data'] = grain_checkpoint.CheckpointRestore(data_iterator)
  restored = manager.restore(step, args=ocp.args.Composite(**args))
  return _local(restored['state'])


def _global(tree, abstract: bool = False):
  """With several processes, each one's copy of the arrays of ``tree`` as
  one array replicated over every device (Orbax saves no process-local
  arrays); as shapes only when ``abstract`` (a restore target). Python
  scalars (a fresh state's step) stay. One process: ``tree``."""
  if jax.process_count() == 1:
    return tree
  sharding = jax.sharding.NamedSharding(
      jax.sharding.Mesh(jax.devices(), ('devices',)),
      jax.sharding.PartitionSpec())

  def replicated(x):
    if not isinstance(x, jax.Array):
      return x
    if abstract:
      return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
    return jax.make_array_from_process_local_data(sharding, np.asarray(x))

  return jax.tree.map(replicated, tree)


def _local(tree):
  """The inverse of `_global`: this process's copy, on one local device."""
  if jax.process_count() == 1:
    return tree
  return jax.tree.map(
      lambda x: x.addressable_data(0) if isinstance(x, jax.Array) else x, tree)


def restore_latest_state(workdir: str, config: ml_collections.ConfigDict,
                         model: nn.Module) -> TrainState:
  """The latest checkpoint of ``workdir`` for evaluation or prediction.

  The saved optimiser state has the structure of the training stage that
  wrote it (frozen parts carry none), so the restore target enters that
  stage first. Raises FileNotFoundError naming the directory when there is
  no checkpoint.
  """
  width, height = config.data.input_size
  target = state_lib.create_train_state(model, (1, height, width, 3),
                                        jax.random.PRNGKey(0))
  manager = make_manager(workdir)
  step = manager.latest_step()
  if step is not None:
    schedule = stages.plan(config.train, build.is_cascade(model))
    target = stages.enter(target, config.train, stages.stage_of(schedule, step))
  return restore(manager, target)


def restore_config(workdir: str) -> ml_collections.ConfigDict:
  """The config saved with the latest checkpoint of ``workdir``."""
  manager = make_manager(workdir)
  step = manager.latest_step()
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {manager.directory}')
  restored = manager.restore(
      step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
  return ml_collections.ConfigDict(restored['config'])


def restore_params(workdir: str) -> dict:
  """The parameters of the latest checkpoint of ``workdir``, as saved (no
  target structure: a model with more parts can start from them)."""
  manager = make_manager(workdir)
  step = manager.latest_step()
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {manager.directory} to start '
                            'from (train.init_from)')
  restored = manager.restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  return restored['state']['params']


def warm_start(params: dict, saved: dict, source: str) -> dict:
  """``params`` with every top-level part that ``saved`` has taken from it.

  E.g. a cascade with a new spatial model keeps its fresh 'spatial' part and
  takes 'coarse' and 'fine' from a trained cascade. Raises, naming the part,
  when a shared part's structure or shapes differ.
  """
  merged = dict(params)
  for name, part in saved.items():
    if name not in params:
      raise ValueError(f'{source} has parameters {name!r} that this model '
                       f'does not have; its parts: {sorted(params)}')
    fresh_shapes = jax.tree.map(lambda x: tuple(x.shape), params[name])
    saved_shapes = jax.tree.map(lambda x: tuple(x.shape), part)
    if fresh_shapes != saved_shapes:
      raise ValueError(f'parameters {name!r} of {source} do not match this '
                       f'model: {saved_shapes} vs {fresh_shapes}')
    merged[name] = jax.tree.map(lambda x, y: jax.numpy.asarray(y, x.dtype),
                                params[name], part)
  return merged
