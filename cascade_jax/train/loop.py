"""The training loop: data, pmap steps, progress, checkpoints, resume.

Running the same command again on the same workdir resumes from the latest
checkpoint, including the data iterator's position, so the resumed run sees
the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import time

from absl import logging
from flax import jax_utils
import jax
import ml_collections

from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.model import build
from cascade_jax.train import checkpoint
from cascade_jax.train import progress
from cascade_jax.train import state as state_lib
from cascade_jax.train import steps


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains ``config`` into ``workdir`` and returns the final (host) TrainState."""
  num_devices = jax.local_device_count()
  global_batch = config.train.batch_size
  if global_batch % jax.device_count():
    raise ValueError(f'train.batch_size={global_batch} must be a multiple of '
                     f'the {jax.device_count()} devices')
  local_batch = global_batch // jax.process_count()

  train_source, joint_set = datasets.load_split(config.data, 'train')
  eval_source, _ = datasets.load_split(config.data, config.data.eval_split)
  model = build.build_model(config.model, joint_set.num_joints)
  spec = pipeline.crop_spec(config, joint_set)
  width, height = spec.input_size
  state = state_lib.create_train_state(
      model, config.train, (1, height, width, 3),
      jax.random.PRNGKey(config.seed))
  logging.info('model: %s, %d parameters, input %dx%d, heat-map %dx%d',
               type(model).__name__, state_lib.parameter_count(state.params),
               width, height, *spec.heatmap_size[::-1])

  train_loader = pipeline.make_loader(
      train_source, spec, local_batch, train=True, seed=config.seed,
      worker_count=config.data.worker_count)
  train_iterator = iter(train_loader)
  manager = checkpoint.make_manager(workdir, config.train.keep_checkpoints)
  if manager.latest_step() is not None:
    state = checkpoint.restore(manager, state, train_iterator)
    logging.info('resumed from %s at step %d', manager.directory,
                 int(state.step))
  start_step = int(state.step)
  total_steps = config.train.steps

  report = progress.Progress(total_steps, start_step, global_batch,
                             config.train.log_every, workdir)
  replicated = jax_utils.replicate(state)
  started = time.perf_counter()
  for step in range(start_step + 1, total_steps + 1):
    batch = _device_batch(next(train_iterator), num_devices)
    replicated, metrics = steps.p_train_step(replicated, batch)
    report.update(step, metrics)
    if step % config.train.checkpoint_every == 0 or step == total_steps:
      checkpoint.save(manager, step, jax_utils.unreplicate(replicated),
                      train_iterator, config)
    if config.train.eval_every and (step % config.train.eval_every == 0
                                    or step == total_steps):
      eval_loss = evaluate_loss(replicated, eval_source, spec, config,
                                num_devices)
      logging.info('step %d: test loss %.5f', step, eval_loss)
      report.scalars(step, {'test/loss': eval_loss})
  report.close()
  if total_steps > start_step:
    logging.info('trained %d steps in %s', total_steps - start_step,
                 progress.format_duration(time.perf_counter() - started))
  return jax_utils.unreplicate(replicated)


def evaluate_loss(replicated, source, spec, config, num_devices) -> float:
  """Mean E1 over the test split (the last partial batch is dropped)."""
  loader = pipeline.make_loader(source, spec, config.eval.batch_size,
                                train=False, seed=config.seed)
  total, count = 0.0, 0
  for batch in loader:
    if len(batch['image']) % num_devices:
      continue
    metrics = steps.p_eval_step(replicated, _device_batch(batch, num_devices))
    total += float(metrics['loss'][0]) * len(batch['image'])
    count += len(batch['image'])
  return total / max(count, 1)


def _device_batch(batch, num_devices):
  """Drops host-only keys and splits the batch over the local devices."""
  device_batch = {k: v for k, v in batch.items()
                  if k not in pipeline.HOST_KEYS}
  return steps.shard(device_batch, num_devices)
