"""The training loop: data, pmap steps, progress, checkpoints, resume.

Running the same command again on the same workdir resumes from the latest
checkpoint. The global batch of a step is a function of the seed and the step
(pipeline.GlobalBatches), so the resumed run sees the batches the
uninterrupted run would have seen, on any number of processes. SIGTERM or
SIGINT stop it after the step in flight with a checkpoint of that step
(preemption.py). A step whose loss or gradients are not finite stops
training, or with ``train.skip_nonfinite`` changes nothing and is counted. A
new run may start from the parameters of another run (``train.init_from``, a
workdir): e.g. a trained cascade gets a spatial model and trains only its
stage. With ``train.spatial_choice_split``, in a run with a spatial stage,
the MRF keeps only the joints it makes more accurate on those held-out
images: chosen at the last step of the spatial stage and confirmed on the
cascade's answers at the last step of training (spatial_choice.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import time

from absl import logging
from flax import jax_utils
import jax
import ml_collections
import numpy as np

from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.data import prefetch
from cascade_jax.model import build
from cascade_jax.model import spatial
from cascade_jax.train import checkpoint
from cascade_jax.train import preemption
from cascade_jax.train import progress
from cascade_jax.train import spatial_choice
from cascade_jax.train import stages
from cascade_jax.train import state as state_lib
from cascade_jax.train import steps


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
  """Trains ``config`` into ``workdir`` through its stages; returns the final
  (host) TrainState.

  Raises preemption.Preempted after checkpointing when SIGTERM or SIGINT
  arrive, and FloatingPointError, naming the step, at a non-finite step
  (unless ``train.skip_nonfinite``); the latest checkpoint then holds the
  last good state.
  """
  num_devices = jax.local_device_count()
  global_batch = config.train.batch_size
  if global_batch % jax.device_count():
    raise ValueError(f'train.batch_size={global_batch}, the global batch, '
                     'must be a multiple of jax.device_count()='
                     f'{jax.device_count()} (the devices of every process)')
  local_batch = global_batch // jax.process_count()
  checkpoint.check_writable(workdir)  # Before hours of data and compiling.

  train_source, joint_set = datasets.load_split(config.data,
                                                 config.data.train_split)
  eval_source, _ = datasets.load_split(config.data, config.data.eval_split)
  model = build.build_model(config.model, joint_set.num_joints,
                            spatial.build(config, joint_set))
  is_cascade = build.is_cascade(model)
  schedule = stages.plan(config.train, is_cascade)
  spec = pipeline.crop_spec(config, joint_set)
  width, height = spec.input_size
  state = state_lib.create_train_state(model, (1, height, width, 3),
                                       jax.random.PRNGKey(config.seed))
  # The MRF's joints are chosen, and confirmed at the end, in the run that
  # trains it (spatial_choice.py); its held-out split is checked now, so that
  # a missing, too small or not held-out one fails before training.
  choosing_joints = bool(config.train.get('spatial_choice_split')
                         and 'spatial' in state.params
                         and any(s.name == 'spatial' for s in schedule))
  if choosing_joints:
    spatial_choice.check_held_out(config)
  logging.info('model: %s, %d parameters, input %dx%d, heat-map %dx%d; '
               'stages: %s', type(model).__name__,
               state_lib.parameter_count(state.params), width, height,
               *spec.heatmap_size[::-1],
               ', '.join(f'{s.name} {s.steps}' for s in schedule))

  manager = checkpoint.make_manager(workdir, config.train.keep_checkpoints)
  latest = manager.latest_step()
  if latest is not None:
    # The checkpoint holds the optimiser state of the stage that wrote it.
    state = stages.enter(state, config.train, stages.stage_of(schedule, latest))
    state = checkpoint.restore(manager, state, model_config=config.model)
    logging.info('resumed from %s at step %d', manager.directory, latest)
  elif config.train.get('init_from'):
    parts = tuple(config.train.get('init_parts', ()))
    state = state.replace(params=checkpoint.warm_start(
        state.params, checkpoint.restore_params(config.train.init_from),
        config.train.init_from, parts))
    logging.info('parameters %sfrom %s',
                 f'{", ".join(parts)} ' if parts else '',
                 config.train.init_from)
  start_step = int(state.step)
  total_steps = stages.total_steps(schedule)
  # This process's slices of the global batches after start_step, read ahead
  # while the step runs.
  train_iterator = prefetch.Prefetcher(iter(pipeline.make_loader(
      train_source, spec, local_batch, train=True, seed=config.seed,
      worker_count=config.data.worker_count, first_step=start_step)))

  report = progress.Progress(total_steps, start_step, global_batch,
                             config.train.log_every, workdir)
  non_finite = NonFiniteSteps(config.train.skip_nonfinite, workdir,
                              start_step)
  started = time.perf_counter()
  with preemption.StopRequest() as stop:
    try:
      for stage in schedule:
        if start_step >= stage.end:
          continue
        if start_step <= stage.begin:
          state = stages.enter(state, config.train, stage)
          if stage.name == 'spatial':  # every joint trains; chosen at the end
            state = state.replace(params=spatial_choice.with_active(
                state.params, np.ones(joint_set.num_joints)))
          logging.info('stage %s: steps %d to %d', stage.name, stage.begin + 1,
                       stage.end)
        state = _run_stage(state, stage, train_iterator, eval_source, spec,
                           config, is_cascade, manager, report, num_devices,
                           stop, non_finite, workdir,
                           choose_joints_at_end=choosing_joints,
                           last_step=total_steps)
        start_step = stage.end
    finally:
      report.close()
      train_iterator.close()
  logging.info('trained to step %d in %s', total_steps,
               progress.format_duration(time.perf_counter() - started))
  return state


def _run_stage(state, stage, train_iterator, eval_source, spec, config,
               is_cascade, manager, report, num_devices, stop, non_finite,
               workdir, choose_joints_at_end: bool, last_step: int):
  """Steps ``state`` to the end of ``stage``, checkpointing on the way;
  with ``choose_joints_at_end``, the MRF's joints are chosen at its last
  step (`_choose_spatial_joints`) before that step's checkpoint."""
  p_train_step = steps.make_train_step(
      stage.name, is_cascade, config.train.fine_loss_weight,
      spatial_loss_weight=config.train.get('spatial_loss_weight', 0.0),
      fine_mask_outside=config.train.get('fine_mask_outside', False),
      skip_nonfinite=config.train.skip_nonfinite)
  replicated = steps.replicate(state)
  for step in range(int(state.step) + 1, stage.end + 1):
    host_batch = next(train_iterator)
    if config.train.record_batches:
      record_batch(workdir, step, host_batch)
    replicated, metrics = p_train_step(
        replicated, device_batch(host_batch, num_devices))
    non_finite.add(step, metrics)
    if choose_joints_at_end and step == stage.end:
      replicated = _choose_spatial_joints(replicated, stage, last_step,
                                          config, spec, workdir)
    stopping = stop.requested(step)
    saving = (stopping or step % config.train.checkpoint_every == 0
              or step == stage.end)
    if saving or step % config.train.log_every == 0:
      non_finite.check(stage.name, manager, report)  # before saving or logging
    report.update(step, metrics)
    if saving:
      checkpoint.save(manager, step, jax_utils.unreplicate(replicated),
                      config)
    if stopping:
      raise preemption.Preempted(step, stop.signal_number, manager.directory)
    if config.train.eval_every and step % config.train.eval_every == 0:
      eval_metrics = evaluate_loss(replicated, eval_source, spec, config,
                                   is_cascade, num_devices)
      logging.info('step %d: %s', step, ', '.join(
          f'test {k} {v:.5f}' for k, v in eval_metrics.items()))
      report.scalars(step, {f'test/{k}': v for k, v in eval_metrics.items()})
  return jax_utils.unreplicate(replicated)


def _choose_spatial_joints(replicated, stage, last_step, config, spec,
                           workdir):
  """At the end of ``stage``: the MRF's joints chosen if it is the spatial
  stage, and confirmed on the cascade's answers if training ends here."""
  if stage.name != 'spatial' and stage.end != last_step:
    return replicated
  state = jax_utils.unreplicate(replicated)
  # Both tests compare predictions made with the MRF on every joint: one
  # prediction serves both when the spatial stage ends training.
  predictions = spatial_choice.predict_choice_split(state, config, spec)
  if stage.name == 'spatial':
    state, _ = spatial_choice.choose_joints(state, config, spec, workdir,
                                            predictions)
  if stage.end == last_step:
    state, _ = spatial_choice.confirm_joints(state, config, spec, workdir,
                                             predictions)
  return steps.replicate(state)


def evaluate_loss(replicated, source, spec, config, is_cascade,
                  num_devices) -> dict[str, float]:
  """Mean E1 (and E2) over the evaluation split; the last partial batch,
  which would not split over the devices evenly, is left out.

  Every process evaluates the whole split: the pmapped step runs on every
  device of every process, so all must step through the same batches
  (unequal shards would leave one waiting for the others).
  """
  loader = pipeline.make_loader(source, spec, config.eval.batch_size,
                                train=False, seed=config.seed,
                                shard_by_process=False)
  p_eval_step = steps.make_eval_step(is_cascade)
  totals, count = {}, 0
  for batch in loader:
    size = len(batch['image'])
    if size % num_devices:
      continue
    metrics = p_eval_step(replicated, device_batch(batch, num_devices))
    for name, value in metrics.items():
      totals[name] = totals.get(name, 0.0) + float(value[0]) * size
    count += size
  return {name: total / max(count, 1) for name, total in totals.items()}


class NonFiniteSteps:
  """The steps whose loss or gradients were not finite (metrics['finite']).

  The flags stay on device until ``check`` (at logging and checkpoint steps),
  so the host does not wait on every step. By default ``check`` raises
  FloatingPointError naming the first bad step, before anything of it is
  saved. With ``skip`` such steps changed nothing (steps.train_step) and are
  counted: logged, on TensorBoard (train/skipped_steps) and listed in
  ``workdir``/skipped_steps.json, which a resumed run reads back.
  """

  def __init__(self, skip: bool, workdir: str, start_step: int):
    self._skip = skip
    self._path = os.path.join(workdir, 'skipped_steps.json')
    self._pending = []
    self.skipped = []
    if os.path.exists(self._path):
      with open(self._path) as f:
        self.skipped = [s for s in json.load(f) if s <= start_step]

  def add(self, step: int, metrics: dict) -> None:
    self._pending.append((step, metrics['finite']))

  def check(self, stage: str, manager, report) -> None:
    flags = jax.device_get([flag for _, flag in self._pending])
    bad = [step for (step, _), flag in zip(self._pending, flags)
           if not np.all(flag)]
    last = self._pending[-1][0] if self._pending else None
    self._pending = []
    if not bad:
      return
    if not self._skip:
      raise FloatingPointError(
          f'non-finite loss or gradients at step {bad[0]} (stage {stage}); '
          f'the latest checkpoint, step {manager.latest_step()} in '
          f'{manager.directory}, holds the last good state. Lower '
          'train.learning_rate, check the data, or set '
          'train.skip_nonfinite=True to skip such steps')
    self.skipped += bad
    logging.warning('skipped non-finite steps %s (%d skipped so far)', bad,
                    len(self.skipped))
    report.scalars(last, {'train/skipped_steps': len(self.skipped)})
    if jax.process_index() == 0:
      with open(self._path, 'w') as f:
        json.dump(self.skipped, f)


def record_batch(workdir: str, step: int, batch: dict) -> None:
  """Appends 'step sha256' of this process's ``batch`` to
  ``workdir``/batches_<process>.txt (``train.record_batches``): a check that
  a resumed run sees the uninterrupted run's batches, in its order."""
  digest = hashlib.sha256()
  for key in sorted(batch):
    value = np.ascontiguousarray(batch[key])
    digest.update(f'{key} {value.dtype} {value.shape}'.encode())
    digest.update(value.tobytes())
  path = os.path.join(workdir, f'batches_{jax.process_index()}.txt')
  with open(path, 'a') as f:
    f.write(f'{step} {digest.hexdigest()}\n')


def device_batch(batch, num_devices):
  """Drops host-only keys and splits the batch over the local devices."""
  kept = {k: v for k, v in batch.items() if k not in pipeline.HOST_KEYS}
  return steps.shard(kept, num_devices)
