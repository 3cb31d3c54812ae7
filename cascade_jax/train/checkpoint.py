"""Orbax checkpoints of the TrainState, the data iterator and the config.

Orbax writes each step into a temporary directory and renames it when
complete, so an interrupted save never hides the previous checkpoint.
"""

from __future__ import annotations

import json
import os

from etils import epath
import grain.checkpoint as grain_checkpoint
import ml_collections
import orbax.checkpoint as ocp

from cascade_jax.train.state import TrainState


def make_manager(workdir: str, keep: int = 3) -> ocp.CheckpointManager:
  """A CheckpointManager over ``workdir``/checkpoints keeping the last ``keep``."""
  directory = epath.Path(os.path.abspath(workdir)) / 'checkpoints'
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
  return ocp.CheckpointManager(directory, options=options,
                               item_names=('state', 'data', 'config'))


def save(manager: ocp.CheckpointManager, step: int, state: TrainState,
         data_iterator, config: ml_collections.ConfigDict) -> None:
  """Saves an unreplicated state, the iterator position and the config; waits."""
  args = {'state': ocp.args.StandardSave(state),
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
  args = {'state': ocp.args.StandardRestore(target)}
  if data_iterator is not None:
    args['data'] = grain_checkpoint.CheckpointRestore(data_iterator)
  restored = manager.restore(step, args=ocp.args.Composite(**args))
  return restored['state']


def restore_config(workdir: str) -> ml_collections.ConfigDict:
  """The config saved with the latest checkpoint of ``workdir``."""
  manager = make_manager(workdir)
  step = manager.latest_step()
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {manager.directory}')
  restored = manager.restore(
      step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
  return ml_collections.ConfigDict(restored['config'])
