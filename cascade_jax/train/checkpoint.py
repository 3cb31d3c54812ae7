"""Orbax checkpoints of the TrainState and the config.

The data position is not saved: the batches after a step follow from the step
(pipeline.GlobalBatches), on any number of processes.

Orbax writes each step into a temporary directory and renames it when
complete, and removes steps past ``keep`` only after that: a save that fails
or is interrupted leaves the previous checkpoint as the latest, loadable
(tests/train/test_checkpoint.py). `check_writable` finds an unusable workdir
before training starts; a checkpoint of another architecture is refused with
the parameters and the model config keys that differ.
"""

from __future__ import annotations

import json
import os
import tempfile

from etils import epath
import flax.linen as nn
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
                               item_names=('state', 'config'))


def check_writable(workdir: str) -> None:
  """Raises OSError naming ``workdir``/checkpoints unless it can be created
  and written: before training starts rather than at the first save."""
  directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
  try:
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryFile(dir=directory):
      pass
  except OSError as error:
    raise OSError(f'cannot write checkpoints to {directory} (--workdir='
                  f'{workdir}): {error.strerror or error}') from error


def save(manager: ocp.CheckpointManager, step: int, state: TrainState,
         config: ml_collections.ConfigDict) -> None:
  """Saves an unreplicated state and the config; waits.

  Every process calls it (Orbax writes the arrays once). Raises RuntimeError
  naming the directory and the step when the save fails; the previous
  checkpoint then stays the latest.
  """
  args = {'state': ocp.args.StandardSave(_global(state)),
          'config': ocp.args.JsonSave(json.loads(config.to_json()))}
  previous = manager.latest_step()
  try:
    manager.save(step, args=ocp.args.Composite(**args), force=True)
    manager.wait_until_finished()
  except Exception as error:  # Orbax and the file system raise many types.
    raise RuntimeError(
        f'saving checkpoint step {step} to {manager.directory} failed: '
        f'{error}; the latest complete checkpoint is still '
        f'{"none" if previous is None else f"step {previous}"}') from error


def restore(manager: ocp.CheckpointManager, target: TrainState,
            step: int | None = None,
            model_config: ml_collections.ConfigDict | None = None
            ) -> TrainState:
  """Restores ``step`` (default: latest) into the structure of ``target``.

  Raises FileNotFoundError naming the directory when there is no checkpoint,
  and ValueError naming the parameters (and the keys of ``model_config``, the
  target's model config, that differ from the saved one) when the saved
  parameters have other shapes. That check reads only the checkpoint's
  metadata, before any array: an array read Orbax abandons keeps printing
  errors from its event loop until the process exits.
  """
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(
        f'no checkpoint in {manager.directory}: train first, or point '
        '--workdir at a training run')
  mismatch = _parameter_mismatch(manager, step, target, model_config)
  if mismatch:
    raise ValueError(mismatch)
  args = {'state': ocp.args.StandardRestore(_global(target, abstract=True))}
  restored = manager.restore(step, args=ocp.args.Composite(**args))
  return _local(restored['state'])


def _parameter_mismatch(manager: ocp.CheckpointManager, step: int,
                        target: TrainState,
                        model_config: ml_collections.ConfigDict | None
                        ) -> str | None:
  """What differs between the saved parameters of ``step`` and those of
  ``target`` (paths and shapes), or None when they agree."""
  saved = ocp.StandardCheckpointHandler().metadata(
      manager.directory / str(step) / 'state').tree['params']
  saved, here = _shapes(saved), _shapes(target.params)
  differences = [f'{path}: {saved[path]} saved, {here[path]} here'
                 for path in sorted(saved.keys() & here.keys())
                 if saved[path] != here[path]]
  differences += [f'{path}: {saved[path]} saved, not in this model'
                  for path in sorted(saved.keys() - here.keys())]
  differences += [f'{path}: not saved, {here[path]} in this model'
                  for path in sorted(here.keys() - saved.keys())]
  if not differences:
    return None
  model = _saved_config(manager, step).get('model', {})
  shown = differences[:10] + ([f'... {len(differences) - 10} more']
                              if len(differences) > 10 else [])
  message = (f'checkpoint step {step} of {manager.directory} holds another '
             f'architecture than this model ({len(differences)} parameter '
             'arrays differ):\n  ' + '\n  '.join(shown) +
             f'\nIt was saved with the model config {json.dumps(model)}')
  if model_config is not None:
    current = json.loads(model_config.to_json())

    def shown_value(config, key):
      return json.dumps(config[key]) if key in config else 'not set'

    keys = [f'{key} (saved: {shown_value(model, key)}, here: '
            f'{shown_value(current, key)})'
            for key in sorted(model.keys() | current.keys())
            if model.get(key) != current.get(key)]
    message += ('\nThe model config here differs from the saved one in: '
                + ', '.join(keys) if keys else
                '\nThe model config here is the saved one.')
  return message


def _shapes(tree) -> dict[str, tuple[int, ...]]:
  """{'coarse/bank_0/conv_0/kernel': shape} of a parameter tree."""
  return {jax.tree_util.keystr(path, simple=True, separator='/'):
          tuple(leaf.shape)
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _saved_config(manager: ocp.CheckpointManager, step: int) -> dict:
  restored = manager.restore(
      step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
  return restored['config']


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
    if not isinstance(x, (jax.Array, jax.ShapeDtypeStruct)):
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
  return restore(manager, target, model_config=config.model)


def restore_config(workdir: str) -> ml_collections.ConfigDict:
  """The config saved with the latest checkpoint of ``workdir``."""
  manager = make_manager(workdir)
  step = manager.latest_step()
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {manager.directory}')
  return ml_collections.ConfigDict(_saved_config(manager, step))


def restore_params(workdir: str) -> dict:
  """The parameters of the latest checkpoint of ``workdir``, as saved (no
  target structure: a model with more parts can start from them)."""
  manager = make_manager(workdir)
  step = manager.latest_step()
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {manager.directory} to start '
                            'from (train.init_from)')
  # A target of the saved shapes on this run's devices: without one, Orbax
  # restores onto the devices that saved ('Topology mismatch' when another
  # number of processes wrote the checkpoint).
  saved = ocp.StandardCheckpointHandler().metadata(
      manager.directory / str(step) / 'state').tree
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = _global(jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
      saved), abstract=True)
  restored = manager.restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
  return _local(restored['state'])['params']


def warm_start(params: dict, saved: dict, source: str,
               parts: tuple[str, ...] = ()) -> dict:
  """``params`` with every top-level part that ``saved`` has (or each of
  ``parts``, when given) taken from it.

  E.g. a cascade with a new spatial model keeps its fresh 'spatial' part and
  takes 'coarse' and 'fine' from a trained cascade; with parts ('coarse',)
  a cascade with another fine model starts from a trained coarse model.
  Raises, naming the part, when a shared part's structure or shapes differ
  or a requested part is not saved.
  """
  missing = [name for name in parts if name not in saved]
  if missing:
    raise ValueError(f'{source} has no parameters {missing} '
                     f'(train.init_parts); its parts: {sorted(saved)}')
  if parts:
    saved = {name: saved[name] for name in parts}
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
