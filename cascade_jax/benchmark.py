"""Speed of the models and of training on whatever backend JAX has.

Three measurements, each a plain function that returns JSON-ready dicts:

  * ``forward``: inference time per image of the coarse model, the fine model
    (given real crops of the coarse features) and the whole cascade, at
    batch 1 and at a throughput batch, for each pooling factor: the layout of
    paper Table 2 (``table2`` arranges it beside the paper's K40 figures).
  * ``train``: the training step of each stage (coarse, fine, joint) as the
    training loop runs it (`steps.make_train_step`, pmapped, state donated),
    on a resident batch, in images/s.
  * ``conv_paths``: every convolution shape of the config's models timed on
    every path of ``conv.conv2d_same`` (XLA's convolution, the dense matrix,
    the patches), forward and forward + backward: the measurement behind
    ``conv.conv_path``, to rerun on another machine.
  * ``sgemm``: a float32 matrix product on the same backend, the reference
    the models' GFLOP/s are read against (``format_report`` prints each
    training step's fraction of it).
  * ``input_wait``: the training loop fed by the real input pipeline
    (`pipeline.make_loader` with the config's workers, read ahead by
    `prefetch.Prefetcher`): the fraction of the loop's wall time in which
    the device waited for the next batch.

Every timed call ends in ``jax.block_until_ready``; figures are medians over
repeated calls after warm-up, with quartiles and min / max. Compile time is
``lower`` + ``compile``; FLOPs come from XLA's cost analysis of the compiled
executable, so GFLOP/s = FLOPs / median time. The cascade of Table 2 is the
two ConvNets without the MRF spatial model (the paper times it separately).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cascade_jax import heatmaps
from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.data import prefetch
from cascade_jax.model import build
from cascade_jax.model import conv
from cascade_jax.model import crop
from cascade_jax.model import fine
from cascade_jax.train import loop
from cascade_jax.train import stages
from cascade_jax.train import state as state_lib
from cascade_jax.train import steps

# Paper Table 2: forward ms per image on an Nvidia K40, FLIC 320x240 input.
PAPER_K40_MS = {
    'coarse': {4: 140.0, 8: 74.9, 16: 54.7},
    'fine': {4: 17.2, 8: 19.3, 16: 15.9},
    'cascade': {4: 157.2, 8: 94.2, 16: 70.6},
}
FORWARD_MODELS = tuple(PAPER_K40_MS)
TRAIN_STAGES = ('coarse', 'fine', 'joint')
# Steps per turn when a twin's training steps are timed in turns with ours.
COMPARE_BLOCK = 5


def summarize(seconds) -> dict:
  """Median, quartiles, min and max of timings in seconds."""
  values = np.asarray(seconds, np.float64)
  q25, median, q75 = np.percentile(values, [25, 50, 75])
  return {'median': float(median), 'q25': float(q25), 'q75': float(q75),
          'min': float(values.min()), 'max': float(values.max()),
          'n': int(values.size)}


def time_calls(fn, args, repeats: int, warmup: int) -> list[float]:
  """Seconds per call of ``fn(*args)`` (until its outputs are ready), after
  ``warmup`` untimed calls."""
  if repeats < 1:
    raise ValueError(f'repeats must be >= 1, got {repeats}')
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  samples = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    samples.append(time.perf_counter() - start)
  return samples


def step_timer(step_fn, state, batch):
  """A timer over ``state, metrics = step_fn(state, batch)``: ``timer(n)``
  runs n more steps from the state the last call left (the state may be
  donated) and returns the seconds of each, until its outputs were ready."""
  def timer(count: int) -> list[float]:
    nonlocal state
    samples = []
    for _ in range(count):
      start = time.perf_counter()
      state, metrics = step_fn(state, batch)
      jax.block_until_ready((state, metrics))
      samples.append(time.perf_counter() - start)
    return samples
  return timer


def interleave(timers: dict, repeats: int, warmup: int,
               block: int) -> dict[str, list[float]]:
  """Seconds per step of each of ``timers`` (name -> ``timer(n)``, which
  runs n steps and returns their seconds), taken in turns: ``warmup``
  untimed steps of each, then blocks of ``block`` steps of each in turn
  until each has ``repeats``. The 2-core machines here change speed by a
  quarter within minutes (BUILD_NOTES, speed): timed one after the other,
  two steps would be compared across that drift; in turns, both see it.
  With several timers each turn starts with one untimed step: the first
  step after the other framework's ran 3 ms (JAX) and 8 ms (PyTorch)
  slower than the next four in the demo's coarse stage.
  """
  if repeats < 1 or block < 1:
    raise ValueError(f'repeats and block must be >= 1, got {repeats} and '
                     f'{block}')
  for timer in timers.values():
    timer(warmup)
  samples = {name: [] for name in timers}
  while len(samples[next(iter(timers))]) < repeats:
    for name, timer in timers.items():
      if len(timers) > 1:
        timer(1)
      samples[name] += timer(min(block, repeats - len(samples[name])))
  return samples


def compile_fn(jitted, *args):
  """(compiled executable, seconds to lower and compile) of ``jitted``."""
  start = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  return compiled, time.perf_counter() - start


def flops(compiled) -> float:
  """FLOPs of one call of ``compiled``, from XLA's cost analysis."""
  cost = compiled.cost_analysis()
  value = float(cost.get('flops', 0.0)) if cost else 0.0
  if value <= 0:
    raise RuntimeError(f'XLA cost analysis reported no FLOPs: {cost}')
  return value


def executable_memory(compiled) -> dict:
  """Bytes of the compiled executable's buffers (XLA memory analysis)."""
  stats = compiled.memory_analysis()
  return {'argument_bytes': int(stats.argument_size_in_bytes),
          'output_bytes': int(stats.output_size_in_bytes),
          'temp_bytes': int(stats.temp_size_in_bytes),
          'alias_bytes': int(stats.alias_size_in_bytes)}


def peak_memory() -> dict:
  """Peak memory so far: the device's allocator statistics where the backend
  keeps them (GPU, TPU), else the process's peak resident set (CPU)."""
  stats = jax.local_devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return {'source': 'device memory_stats peak_bytes_in_use',
            'bytes': int(stats['peak_bytes_in_use'])}
  # ru_maxrss is in KiB on Linux, in bytes on macOS.
  scale = 1 if sys.platform == 'darwin' else 1024
  return {'source': 'process peak RSS (getrusage ru_maxrss)',
          'bytes': int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                       * scale)}


def environment() -> dict:
  """What the figures were measured on."""
  device = jax.local_devices()[0]
  return {'backend': jax.default_backend(), 'device': device.device_kind,
          'local_device_count': jax.local_device_count(),
          'cpu_count': os.cpu_count(), 'machine': platform.machine(),
          'jax_version': jax.__version__,
          'load_average': list(os.getloadavg())}


def sgemm(size: int = 2048, repeats: int = 10, warmup: int = 2) -> dict:
  """GFLOP/s of a jitted float32 [size, size] @ [size, size] product: what
  this backend reaches on dense compute (2 * size**3 FLOPs per call)."""
  keys = jax.random.split(jax.random.PRNGKey(0))
  a, b = (jax.random.normal(key, (size, size), np.float32) for key in keys)
  compiled, _ = compile_fn(jax.jit(lambda a, b: a @ b), a, b)
  timing = summarize(time_calls(compiled, (a, b), repeats, warmup))
  return {'size': size, 'time_s': timing,
          'gflops_per_s': 2 * size**3 / timing['median'] / 1e9}


def conv_shapes(config: ml_collections.ConfigDict,
                batch_size: int | None = None) -> list[tuple]:
  """Distinct (input shape, kernel shape) of the convolutions of the config's
  model at a training batch (the fine model's per joint: batch x joints)."""
  num_joints = datasets.joint_set(config.data).num_joints
  model = build.build_model(config.model, num_joints)
  batch_size = batch_size or config.train.batch_size
  width, height = config.data.input_size
  shapes = set()

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, conv.Conv):
      x = args[0]
      batch = batch_size * (num_joints if 'fine' in context.module.path
                            else 1)
      shapes.add(((batch, *x.shape[1:]),
                  (*context.module.kernel_size, x.shape[-1],
                   context.module.features)))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                      jnp.zeros((batch_size, height, width, 3)),
                                      train=False))
  return sorted(shapes)


# The largest intermediate, in float32 entries (256 MiB), that the conv sweep
# lets a path build: the dense matrix grows with the map's pixels squared
# (on the demo coarse model's 96 x 96 maps it is 16 GB, and the sweep died
# asking XLA for 32.6 GB), the patches with the batch's pixels times the
# kernel's taps. Such a path is reported as skipped, not timed.
SWEEP_MAX_ENTRIES = 2**26


def path_entries(path: str, x_shape, kernel_shape) -> int:
  """Entries of the largest array ``path`` builds for one convolution: the
  dense path's [H W C, H W O] matrix, the patches' [B, H, W, kh kw C]; 0 for
  XLA's convolution, which builds neither."""
  batch, height, width, channels = x_shape
  kh, kw, _, features = kernel_shape
  if path == 'dense':
    return conv.dense_entries(height, width, channels, features)
  if path == 'patches':
    return batch * height * width * kh * kw * channels
  return 0


def conv_paths(config: ml_collections.ConfigDict, batch_size=None,
               repeats: int = 10, warmup: int = 2) -> list[dict]:
  """Seconds of every path of ``conv.conv2d_same`` (XLA's convolution, the
  dense matrix, the patches) on every shape of ``conv_shapes`` (1x1
  convolutions left out: they are matmuls already), forward and forward +
  backward (both gradients), and the path ``conv.conv_path`` takes.

  A path whose largest array (``path_entries``) exceeds
  ``SWEEP_MAX_ENTRIES`` is not run: its times are None and
  ``entry['skipped'][path]`` says how large the array would have been.
  """
  results = []
  for x_shape, kernel_shape in conv_shapes(config, batch_size):
    if kernel_shape[:2] == (1, 1):
      continue
    x = jnp.ones(x_shape, jnp.float32)
    kernel = jnp.full(kernel_shape, 0.01, jnp.float32)
    entry = {'input_shape': list(x_shape), 'kernel_shape': list(kernel_shape),
             'path': conv.conv_path(*x_shape[1:3], kernel_shape[:2],
                                    *kernel_shape[2:]),
             'skipped': {}}
    for name, fn in conv.PATHS.items():
      entries = path_entries(name, x_shape, kernel_shape)
      if entries > SWEEP_MAX_ENTRIES:
        entry['skipped'][name] = (f'{entries:,} float32 entries, over the '
                                  f'sweep\'s {SWEEP_MAX_ENTRIES:,}')
        entry[f'{name}_forward_s'] = entry[f'{name}_forward_backward_s'] = None
        continue
      gradient = jax.grad(lambda x, k, fn=fn: jnp.sum(jnp.square(fn(x, k))),
                          argnums=(0, 1))
      for part, jitted in (('forward', jax.jit(fn)),
                           ('forward_backward', jax.jit(gradient))):
        entry[f'{name}_{part}_s'] = summarize(
            time_calls(jitted, (x, kernel), repeats, warmup))['median']
    results.append(entry)
    print(f'  conv {x_shape} * {kernel_shape}: ' + ', '.join(
        f'{name} {_ms(entry[f"{name}_forward_backward_s"])}'
        for name in conv.PATHS) + f' (fwd + bwd; takes {entry["path"]})',
          flush=True)
  return results


def _ms(seconds: float | None) -> str:
  """Seconds as milliseconds for the reports; 'skipped' for a path not run."""
  return 'skipped' if seconds is None else f'{1e3 * seconds:.2f} ms'


def _timed(compiled, args, batch_size: int, repeats: int, warmup: int,
           compile_seconds: float) -> dict:
  """Timing, FLOPs and memory of one compiled function at ``batch_size``."""
  step = summarize(time_calls(compiled, args, repeats, warmup))
  total_flops = flops(compiled)
  return {'batch_size': batch_size, 'compile_s': compile_seconds,
          'time_s': step, 'ms_per_image': 1e3 * step['median'] / batch_size,
          'flops_per_image': total_flops / batch_size,
          'gflops_per_s': total_flops / step['median'] / 1e9,
          'memory': executable_memory(compiled)}


def _model_config(config: ml_collections.ConfigDict, name: str,
                  pooling: int) -> ml_collections.ConfigDict:
  model_config = ml_collections.ConfigDict(config.model.to_dict())
  model_config.name = name
  model_config.pooling = pooling
  return model_config


def forward(config: ml_collections.ConfigDict, pooling: int,
            batch_sizes=(1, 16), repeats: int = 10, warmup: int = 2,
            seed: int = 0) -> list[dict]:
  """Forward (inference) timings of coarse, fine and cascade at ``pooling``.

  The models have ``config.model``'s widths with ``pooling`` and random
  parameters; the fine model runs on the crops the coarse model's own
  argmax cuts from its features, precomputed, so its row times the fine
  model alone.

  Returns:
    One dict per (model, batch size): 'model', 'pooling', 'batch_size',
    'compile_s', 'time_s' (``summarize``), 'ms_per_image',
    'flops_per_image', 'gflops_per_s', 'memory' (``executable_memory``).
  """
  num_joints = datasets.joint_set(config.data).num_joints
  cascade_model = build.build_model(_model_config(config, 'cascade', pooling),
                                    num_joints)
  coarse_model = build.build_model(_model_config(config, 'coarse', pooling),
                                   num_joints)
  fine_model = fine.FineHeatmapModel(
      num_joints, tuple(config.model.fine_bank_widths),
      config.model.fine_hidden_width)
  width, height = config.data.input_size
  key = jax.random.PRNGKey(seed)
  params = state_lib.create_train_state(cascade_model, (1, height, width, 3),
                                        key).params

  @jax.jit
  def run_coarse(coarse_params, images):
    return coarse_model.apply({'params': coarse_params}, images, train=False)

  @jax.jit
  def run_fine(fine_params, crops, origins):
    return fine_model.apply({'params': fine_params}, crops, origins)

  @jax.jit
  def run_cascade(all_params, images):
    return cascade_model.apply({'params': all_params}, images, train=False)

  @jax.jit
  def coarse_crops(coarse_params, images):
    maps, features = coarse_model.apply({'params': coarse_params}, images,
                                        train=False, return_features=True)
    centres, _ = heatmaps.decode(maps, pooling)
    return crop.crop_features(features, centres, config.model.context)

  results = []
  for batch_size in batch_sizes:
    images = jax.random.uniform(jax.random.fold_in(key, batch_size),
                                (batch_size, height, width, 3))
    crops, origins = coarse_crops(params['coarse'], images)
    calls = {'coarse': (run_coarse, (params['coarse'], images)),
             'fine': (run_fine, (params['fine'], crops, origins)),
             'cascade': (run_cascade, (params, images))}
    for name in FORWARD_MODELS:
      jitted, args = calls[name]
      compiled, seconds = compile_fn(jitted, *args)
      results.append({'model': name, 'pooling': pooling,
                      **_timed(compiled, args, batch_size, repeats, warmup,
                               seconds)})
      print(f'  forward {name:7s} {pooling:2d}x batch {batch_size:3d}: '
            f'{results[-1]["ms_per_image"]:8.2f} ms/image', flush=True)
  return results


def table2(forward_results: list[dict]) -> dict:
  """Paper Table 2's layout: rows coarse / fine / cascade, columns '4x',
  '8x', '16x'; each cell ms per image at batch 1 and at the largest batch
  measured, beside the paper's K40 figure."""
  table = {}
  for name in FORWARD_MODELS:
    table[name] = {}
    for pooling, paper_ms in PAPER_K40_MS[name].items():
      rows = [r for r in forward_results
              if r['model'] == name and r['pooling'] == pooling]
      if not rows:
        continue
      single = [r for r in rows if r['batch_size'] == 1]
      largest = max(rows, key=lambda r: r['batch_size'])
      table[name][f'{pooling}x'] = {
          'batch1_ms_per_image': (single[0]['ms_per_image'] if single
                                  else None),
          'throughput_ms_per_image': largest['ms_per_image'],
          'throughput_batch_size': largest['batch_size'],
          'paper_k40_ms': paper_ms}
  return table


def example_batch(spec: pipeline.CropSpec, batch_size: int,
                  seed: int = 0) -> dict:
  """A training batch of random images with every joint labelled, made by
  the real `pipeline.prepare_example` without augmentation (so keys, shapes
  and dtypes are the loader's), host-only keys dropped."""
  rng = np.random.default_rng(seed)
  width, height = spec.input_size
  num_joints = len(spec.flip_permutation)
  examples = []
  for _ in range(batch_size):
    record = {
        'image': rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        'joints': rng.uniform([0, 0], [width - 1, height - 1],
                              (num_joints, 2)).astype(np.float32),
        'visible': np.ones(num_joints, bool),
        spec.center_key: np.array([width / 2, height / 2], np.float32),
        'person_scale': np.float32(width / spec.box_scale)}
    examples.append(pipeline.prepare_example(record, spec, None))
  return {key: np.stack([e[key] for e in examples]) for key in examples[0]
          if key not in pipeline.HOST_KEYS}


def _train_setup(config: ml_collections.ConfigDict, seed: int):
  """(model, TrainState, CropSpec) of ``config`` without the spatial model."""
  joint_set = datasets.joint_set(config.data)
  model = build.build_model(config.model, joint_set.num_joints)
  spec = dataclasses.replace(pipeline.crop_spec(config, joint_set),
                             torso_key=None)
  width, height = spec.input_size
  state = state_lib.create_train_state(model, (1, height, width, 3),
                                       jax.random.PRNGKey(seed))
  return model, state, spec


def _stage_state(state, config, stage_name: str):
  stage = stages.Stage(stage_name, 0, max(
      int(config.train.stage_steps.get(stage_name, 0)), 1))
  return stages.enter(state, config.train, stage)


def trained_parameters(params, stage_name: str) -> int:
  """How many parameters ``stage_name`` trains (``stages.TRAINED_PARTS``; a
  coarse-only model trains all of its own)."""
  if 'fine' not in params:
    return state_lib.parameter_count(params)
  return state_lib.parameter_count(
      [params.get(part, {}) for part in stages.TRAINED_PARTS[stage_name]])


def _stage_names(model, requested) -> tuple[str, ...]:
  allowed = TRAIN_STAGES if build.is_cascade(model) else ('coarse',)
  unknown = set(requested) - set(allowed)
  if unknown:
    raise ValueError(f'stages {sorted(unknown)} cannot be trained on this '
                     f'model (model.name={type(model).__name__}); allowed: '
                     f'{allowed}')
  return tuple(requested)


def train(config: ml_collections.ConfigDict, stage_names=TRAIN_STAGES,
          batch_size: int | None = None, repeats: int = 10, warmup: int = 2,
          seed: int = 0, twin=None) -> list[dict]:
  """Training-step throughput per stage on a resident batch.

  The step is the training loop's (`steps.make_train_step`: pmap over the
  local devices, state donated), at ``config.model.pooling`` and the
  config's batch size unless ``batch_size``.

  Returns:
    One dict per stage: 'stage', 'pooling', 'batch_size', 'compile_s',
    'time_s' (per step), 'images_per_s', 'flops_per_image' (forward and
    backward), 'gflops_per_s', 'parameters' (``trained_parameters``),
    'memory'; with ``twin``, also 'twin': the twin's entry with its
    'time_s', 'images_per_s' and 'block'.

  ``twin`` (``launch.torch_twin.stepper``) maps a stage name to (timer,
  entry) for the same network in another framework; its steps are timed in
  turns with ours (``interleave``, blocks of ``COMPARE_BLOCK`` steps).
  """
  model, state, spec = _train_setup(config, seed)
  stage_names = _stage_names(model, stage_names)
  batch_size = batch_size or config.train.batch_size
  num_devices = jax.local_device_count()
  batch = steps.shard(example_batch(spec, batch_size, seed), num_devices)
  results = []
  for name in stage_names:
    p_step = steps.make_train_step(name, build.is_cascade(model),
                                   config.train.fine_loss_weight)
    replicated = steps.replicate(_stage_state(state, config, name))
    compiled, seconds = compile_fn(p_step, replicated, batch)
    timers = {'jax': step_timer(compiled, replicated, batch)}
    if twin is not None:
      timers['twin'], twin_entry = twin(name)
    samples = interleave(timers, repeats, warmup, COMPARE_BLOCK)
    timing = summarize(samples['jax'])
    # pmap's cost analysis counts one device's program: scale to the batch.
    total_flops = flops(compiled) * num_devices
    results.append({
        'stage': name, 'pooling': config.model.pooling,
        'batch_size': batch_size, 'compile_s': seconds, 'time_s': timing,
        'images_per_s': batch_size / timing['median'],
        'flops_per_image': total_flops / batch_size,
        'gflops_per_s': total_flops / timing['median'] / 1e9,
        'parameters': trained_parameters(state.params, name),
        'memory': executable_memory(compiled)})
    print(f'  train {name:6s} batch {batch_size}: '
          f'{results[-1]["images_per_s"]:8.1f} images/s', flush=True)
    if twin is not None:
      twin_timing = summarize(samples['twin'])
      results[-1]['twin'] = {**twin_entry, 'time_s': twin_timing,
                             'block': COMPARE_BLOCK,
                             'images_per_s': batch_size / twin_timing['median']}
      print(f'  twin  {name:6s} batch {batch_size}: '
            f'{results[-1]["twin"]["images_per_s"]:8.1f} images/s',
            flush=True)
  return results


def input_wait(config: ml_collections.ConfigDict, stage_names=TRAIN_STAGES,
               steps_per_stage: int = 50, warmup: int = 5,
               seed: int = 0) -> list[dict]:
  """The training loop fed by the real input pipeline: time waiting for data.

  The loop of `loop.train_and_evaluate` (batches from `pipeline.make_loader`
  over the config's training split with its ``data.worker_count``, read
  ahead by `prefetch.Prefetcher`; `loop.device_batch`; the pmapped step,
  dispatched asynchronously) runs ``warmup`` untimed steps (worker start-up,
  first reads), then ``steps_per_stage`` timed steps per stage, each stage
  ending in ``block_until_ready``. One iterator serves all stages, as in
  training, so a warm-up past the first epoch times a warm
  `datasets.CachedSource`.

  Dispatch runs ahead of the device, so the loop's thread often waits in
  ``next()`` while earlier steps still run: 'next_fraction' = time inside
  ``next()`` / wall time counts that too. 'wait_fraction' counts only the
  ``next()`` calls after which the last dispatched step was already done,
  i.e. the device had nothing left to run: an upper bound on the time it
  idled for want of data. For comparison the same loop runs on one
  resident batch: 'slowdown' = 1 - loader images/s / resident images/s
  also counts the CPU the input pipeline takes from the step on a CPU
  backend.
  """
  model, state, spec = _train_setup(config, seed)
  stage_names = _stage_names(model, stage_names)
  source, _ = datasets.load_split(config.data, 'train')
  num_devices = jax.local_device_count()
  batch_size = config.train.batch_size // jax.process_count()
  loader = pipeline.make_loader(source, spec, batch_size, train=True,
                                seed=seed,
                                worker_count=config.data.worker_count)
  with prefetch.Prefetcher(iter(loader)) as iterator:
    resident = loop.device_batch(next(iterator), num_devices)

    def from_loader():
      return loop.device_batch(next(iterator), num_devices)

    results = []
    for name in stage_names:
      p_step = steps.make_train_step(name, build.is_cascade(model),
                                     config.train.fine_loss_weight)
      replicated = steps.replicate(_stage_state(state, config, name))
      replicated, _ = p_step(replicated, resident)  # Compiles.
      if name == stage_names[0]:
        replicated, _ = _run_loop(p_step, replicated, from_loader, warmup)
      replicated, timing = _run_loop(p_step, replicated, from_loader,
                                     steps_per_stage)
      replicated, resident_timing = _run_loop(
          p_step, replicated, lambda: resident, steps_per_stage)
      wall = timing['wall_s']
      images = steps_per_stage * batch_size
      results.append({
          'stage': name, 'batch_size': batch_size,
          'worker_count': config.data.worker_count, 'steps': steps_per_stage,
          **timing, 'wait_fraction': timing['wait_s'] / wall,
          'next_fraction': timing['next_s'] / wall,
          'images_per_s': images / wall,
          'resident_images_per_s': images / resident_timing['wall_s'],
          'slowdown': 1.0 - resident_timing['wall_s'] / wall})
      print(f'  input {name:6s}: device waiting for data '
            f'{100 * results[-1]["wait_fraction"]:5.2f}% of {wall:.2f} s '
            f'(in next() {100 * results[-1]["next_fraction"]:.2f}%), '
            f'{images / wall:.1f} images/s (resident batch '
            f'{results[-1]["resident_images_per_s"]:.1f})', flush=True)
  return results


def _run_loop(p_step, replicated, fetch, count: int):
  """``count`` training-loop steps on batches from ``fetch()``, dispatched
  as the training loop does.

  Returns (state, timing): 'wall_s' until the last step is done, 'next_s'
  inside ``fetch``, and 'wait_s' inside the ``fetch`` calls after which the
  last dispatched step was done (the device had run out of work).
  """
  waited = in_fetch = 0.0
  start = time.perf_counter()
  last = metrics = None
  for _ in range(count):
    fetch_start = time.perf_counter()
    batch = fetch()
    seconds = time.perf_counter() - fetch_start
    in_fetch += seconds
    if last is None or last.is_ready():
      waited += seconds
    replicated, metrics = p_step(replicated, batch)
    last = jax.tree.leaves(metrics)[0]
  jax.block_until_ready((replicated, metrics))
  return replicated, {'wall_s': time.perf_counter() - start,
                      'next_s': in_fetch, 'wait_s': waited}


def run(config: ml_collections.ConfigDict, *, poolings=(4, 8, 16),
        batch_sizes=(1, 16), repeats: int = 10, warmup: int = 2,
        train_stages=TRAIN_STAGES, train_batch_size: int | None = None,
        input_steps: int = 0, input_warmup: int = 5, seed: int = 0,
        twin=None) -> dict:
  """All measurements of ``config``, JSON-ready: 'environment', 'forward',
  'table2', 'train', 'sgemm', 'input_wait' (only with ``input_steps`` > 0:
  it reads the config's dataset), 'peak_memory' and the settings used; with
  ``twin`` (see ``train``), 'torch_train': the twin's steps, timed in turns
  with ours."""
  width, height = config.data.input_size
  result = {'environment': environment(),
            'settings': {'input_size': [width, height],
                         'num_joints': datasets.joint_set(
                             config.data).num_joints,
                         'poolings': list(poolings),
                         'batch_sizes': list(batch_sizes),
                         'repeats': repeats, 'warmup': warmup,
                         'train_pooling': config.model.pooling,
                         'seed': seed}}
  result['forward'] = []
  for pooling in poolings:
    result['forward'] += forward(config, pooling, batch_sizes, repeats,
                                 warmup, seed)
  result['table2'] = table2(result['forward'])
  result['train'] = (train(config, train_stages, train_batch_size, repeats,
                           warmup, seed, twin) if train_stages else [])
  if twin is not None:
    result['torch_train'] = [entry.pop('twin') for entry in result['train']]
  result['sgemm'] = sgemm(repeats=repeats, warmup=warmup)
  result['input_wait'] = (input_wait(config, train_stages, input_steps,
                                     input_warmup, seed)
                          if input_steps and train_stages else [])
  result['peak_memory'] = peak_memory()
  return result


def check_same_network(result: dict) -> None:
  """Raises unless every stage of ``result['torch_train']`` trains as many
  parameters as ours: a twin that differs times another network."""
  for ours, twin in zip(result['train'], result.get('torch_train', [])):
    if ours['parameters'] != twin['parameters']:
      raise RuntimeError(
          f'the PyTorch twin is not the same network: its {twin["stage"]} '
          f'stage trains {twin["parameters"]} parameters, the JAX model '
          f'{ours["parameters"]} (launch/torch_twin.py)')


def format_report(result: dict) -> str:
  """The measurements as plain-text tables, Table 2 beside the paper's."""
  env = result['environment']
  lines = [f'{env["backend"]} ({env["device"]}, {env["local_device_count"]} '
           f'device(s), {env["cpu_count"]} CPUs), input '
           f'{result["settings"]["input_size"][0]}x'
           f'{result["settings"]["input_size"][1]}',
           'Forward ms per image, batch 1 / throughput batch [paper K40]:']
  columns = sorted({int(c[:-1]) for row in result['table2'].values()
                    for c in row})
  lines.append(f'{"":8s}' + ''.join(f'{f"{p}x":>28s}' for p in columns))
  for name, row in result['table2'].items():
    cells = []
    for pooling in columns:
      cell = row.get(f'{pooling}x')
      if cell is None:
        cells.append(f'{"-":>28s}')
        continue
      single = cell['batch1_ms_per_image']
      single = '-' if single is None else f'{single:.2f}'
      cells.append(f'{single:>9s} / {cell["throughput_ms_per_image"]:7.2f} '
                   f'[{cell["paper_k40_ms"]:6.1f}]')
    lines.append(f'{name:8s}' + ''.join(cells))
  for entry in result['forward']:
    lines.append(f'  {entry["model"]:7s} {entry["pooling"]:2d}x batch '
                 f'{entry["batch_size"]:3d}: '
                 f'{_spread(entry["time_s"])}, '
                 f'compile {entry["compile_s"]:.2f} s, '
                 f'{entry["flops_per_image"] / 1e9:.3f} GFLOP/image, '
                 f'{entry["gflops_per_s"]:.1f} GFLOP/s')
  if result.get('conv_paths'):
    lines.append('Convolutions, forward / forward + backward (path taken):')
  for entry in result.get('conv_paths', []):
    lines.append(
        f'  {str(tuple(entry["input_shape"])):20s} * '
        f'{str(tuple(entry["kernel_shape"])):16s} ' + ', '.join(
            f'{name} {_ms(entry[f"{name}_forward_s"])} / '
            f'{_ms(entry[f"{name}_forward_backward_s"])}'
            for name in conv.PATHS) + f' ({entry["path"]})')
  reference = result['sgemm']['gflops_per_s']
  lines.append(f'sgemm {result["sgemm"]["size"]}^3 float32: '
               f'{reference:.1f} GFLOP/s (the reference below)')
  for entry in result['train']:
    lines.append(f'train {entry["stage"]:6s} {entry["pooling"]}x batch '
                 f'{entry["batch_size"]}: {entry["images_per_s"]:.1f} '
                 f'images/s (step {_spread(entry["time_s"])}), compile '
                 f'{entry["compile_s"]:.2f} s, '
                 f'{entry["gflops_per_s"]:.1f} GFLOP/s '
                 f'({100 * entry["gflops_per_s"] / reference:.0f}% of sgemm)')
  for ours, twin in zip(result['train'], result.get('torch_train', [])):
    # The twin is the same network: credit it with our step's FLOP count.
    twin_gflops = (ours['gflops_per_s'] * ours['time_s']['median']
                   / twin['time_s']['median'])
    lines.append(f'vs torch {twin["torch_version"]} ({twin["threads"]} '
                 f'threads, in turns of {twin["block"]} steps; parameters '
                 f'torch {twin["parameters"]}, jax '
                 f'{ours["parameters"]}) '
                 f'{twin["stage"]:6s}: jax {1e3 * ours["time_s"]["median"]:.1f}'
                 f' ms/step, torch {1e3 * twin["time_s"]["median"]:.1f} '
                 f'ms/step, torch / jax time '
                 f'{twin["time_s"]["median"] / ours["time_s"]["median"]:.2f}; '
                 f'torch at the same FLOPs {twin_gflops:.1f} GFLOP/s '
                 f'({100 * twin_gflops / reference:.0f}% of sgemm)')
  for entry in result['input_wait']:
    lines.append(f'input {entry["stage"]:6s} {entry["worker_count"]} '
                 f'worker(s): device waiting for data '
                 f'{100 * entry["wait_fraction"]:.2f}% of the loop (in '
                 f'next() {100 * entry["next_fraction"]:.2f}%), '
                 f'{entry["images_per_s"]:.1f} images/s (resident batch '
                 f'{entry["resident_images_per_s"]:.1f})')
  memory = result['peak_memory']
  lines.append(f'peak memory {memory["bytes"] / 2**20:.0f} MiB '
               f'({memory["source"]})')
  return '\n'.join(lines)


def _spread(timing: dict) -> str:
  """'median ... (IQR ..., min ..., n ...)' of a ``summarize`` dict."""
  return (f'median {timing["median"]:.4f} s (IQR {timing["q25"]:.4f}-'
          f'{timing["q75"]:.4f}, min {timing["min"]:.4f}, n {timing["n"]})')
