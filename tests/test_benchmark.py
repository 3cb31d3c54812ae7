"""Tests of cascade_jax/benchmark.py at tiny size: fields and sane values,
never timings."""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cascade_jax import benchmark
from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.model import conv
from configs import synthetic


def _tiny_config(data_dir):
  config = synthetic.get_config()
  config.data.data_dir = str(data_dir)
  config.data.image_size = (48, 48)
  config.data.input_size = (32, 32)
  config.data.num_train = 8
  config.data.num_test = 2
  config.data.worker_count = 0
  config.model.bank_widths = (4, 4, 4, 8)
  config.model.head_widths = (8, 8)
  config.model.fine_bank_widths = (4, 4)
  config.model.fine_hidden_width = 8
  config.model.context = 16
  config.train.batch_size = 2
  return config


@pytest.fixture(scope='module')
def config(tmp_path_factory):
  return _tiny_config(tmp_path_factory.mktemp('tfds'))


@pytest.fixture(scope='module')
def result(config):
  # One pooling: each pooling compiles three models twice (about 21 s here);
  # the table's other columns are tested on made-up figures below.
  return benchmark.run(config, poolings=(8,), batch_sizes=(1, 2),
                       repeats=2, warmup=1, input_steps=2)


def test_summarize_quartiles():
  assert benchmark.summarize([5.0, 1.0, 3.0, 2.0, 4.0]) == {
      'median': 3.0, 'q25': 2.0, 'q75': 4.0, 'min': 1.0, 'max': 5.0, 'n': 5}


def test_flops_of_a_matmul_are_2mkn():
  a, b = jnp.ones((8, 16)), jnp.ones((16, 4))
  compiled, seconds = benchmark.compile_fn(jax.jit(jnp.dot), a, b)
  assert benchmark.flops(compiled) == 2 * 8 * 16 * 4
  assert seconds > 0


def test_time_calls_counts_repeats_after_warmup():
  calls = []
  samples = benchmark.time_calls(lambda: calls.append(1) or jnp.ones(2), (),
                                 repeats=3, warmup=2)
  assert len(calls) == 5 and len(samples) == 3
  assert all(s > 0 for s in samples)


def test_interleave_takes_turns_in_blocks_after_warmup():
  calls = []

  def fake_timer(name):
    def timer(count):
      calls.append((name, count))
      return [float(len(calls))] * count
    return timer

  samples = benchmark.interleave({'a': fake_timer('a'), 'b': fake_timer('b')},
                                 repeats=5, warmup=2, block=3)
  # Each turn starts with one untimed step (the switch's cost).
  assert calls == [('a', 2), ('b', 2), ('a', 1), ('a', 3), ('b', 1), ('b', 3),
                   ('a', 1), ('a', 2), ('b', 1), ('b', 2)]
  # Warm-up steps are not samples; each block's come from its own turn.
  assert samples == {'a': [4.0] * 3 + [8.0] * 2, 'b': [6.0] * 3 + [10.0] * 2}
  calls.clear()
  alone = benchmark.interleave({'a': fake_timer('a')}, repeats=4, warmup=1,
                               block=3)
  assert calls == [('a', 1), ('a', 3), ('a', 1)]  # Nothing to settle from.
  assert alone == {'a': [2.0] * 3 + [3.0]}
  with pytest.raises(ValueError, match='block must be >= 1'):
    benchmark.interleave({'a': fake_timer('a')}, repeats=1, warmup=0, block=0)


def test_a_twin_is_timed_in_turns_with_our_step(config):
  turns = []

  def twin(stage):
    def timer(count):
      turns.append(count)
      return [0.25] * count
    return timer, {'stage': stage, 'parameters': 7}

  result = benchmark.run(config, poolings=(), batch_sizes=(), repeats=7,
                         warmup=1, train_stages=('coarse',), twin=twin)
  assert 'twin' not in result['train'][0]
  assert result['train'][0]['time_s']['n'] == 7
  [entry] = result['torch_train']
  assert entry['stage'] == 'coarse' and entry['parameters'] == 7
  assert entry['time_s']['median'] == 0.25 and entry['time_s']['n'] == 7
  assert entry['images_per_s'] == 2 / 0.25  # The config's batch of 2.
  assert entry['block'] == benchmark.COMPARE_BLOCK == 5
  assert turns == [1, 1, 5, 1, 2]  # Warm-up, then a settling step per turn.


@pytest.mark.slow
def test_table2_layout_beside_the_paper(result):
  table = result['table2']
  assert set(table) == {'coarse', 'fine', 'cascade'}
  for name, row in table.items():
    assert set(row) == {'8x'}
    cell = row['8x']
    assert cell['paper_k40_ms'] == benchmark.PAPER_K40_MS[name][8]
    assert cell['batch1_ms_per_image'] > 0
    assert cell['throughput_ms_per_image'] > 0
    assert cell['throughput_batch_size'] == 2
  assert table['cascade']['8x']['paper_k40_ms'] == 94.2


def test_table2_puts_each_pooling_and_batch_in_its_cell():
  # Made-up figures, each distinct: a swapped column, row or batch fails.
  forward = [{'model': name, 'pooling': pooling, 'batch_size': batch_size,
              'ms_per_image': 100 * m + 10 * p + batch_size}
             for m, name in enumerate(('coarse', 'fine', 'cascade'))
             for p, pooling in enumerate((4, 8, 16))
             for batch_size in (16, 1, 4)]
  table = benchmark.table2(forward)
  assert list(table) == ['coarse', 'fine', 'cascade']
  for m, name in enumerate(('coarse', 'fine', 'cascade')):
    assert list(table[name]) == ['4x', '8x', '16x']
    for p, pooling in enumerate((4, 8, 16)):
      assert table[name][f'{pooling}x'] == {
          'batch1_ms_per_image': 100 * m + 10 * p + 1,
          'throughput_ms_per_image': 100 * m + 10 * p + 16,
          'throughput_batch_size': 16,
          'paper_k40_ms': benchmark.PAPER_K40_MS[name][pooling]}
  assert table['fine']['16x']['paper_k40_ms'] == 15.9
  # A pooling not measured has no cell; no batch 1 gives None.
  table = benchmark.table2([dict(r, batch_size=2) for r in forward
                            if r['pooling'] == 8 and r['batch_size'] == 4])
  assert table['coarse'] == {'8x': {
      'batch1_ms_per_image': None, 'throughput_ms_per_image': 14,
      'throughput_batch_size': 2, 'paper_k40_ms': 74.9}}


@pytest.mark.slow
def test_forward_figures_are_consistent(result):
  assert len(result['forward']) == 3 * 2  # models x batches
  for run in result['forward']:
    timing = run['time_s']
    assert 0 < timing['min'] <= timing['q25'] <= timing['median']
    assert timing['median'] <= timing['q75'] <= timing['max']
    assert run['ms_per_image'] == pytest.approx(
        1e3 * timing['median'] / run['batch_size'])
    assert run['compile_s'] > 0 and run['flops_per_image'] > 0
    assert run['gflops_per_s'] == pytest.approx(
        run['flops_per_image'] * run['batch_size'] / timing['median'] / 1e9)
    assert run['memory']['argument_bytes'] > 0
  by_key = {(r['model'], r['pooling'], r['batch_size']): r
            for r in result['forward']}
  # FLOPs per image do not depend on the batch; the cascade holds both.
  single = by_key['coarse', 8, 1]['flops_per_image']
  assert by_key['coarse', 8, 2]['flops_per_image'] == pytest.approx(
      single, rel=0.05)
  assert by_key['cascade', 8, 1]['flops_per_image'] > single
  assert by_key['fine', 8, 1]['flops_per_image'] > 0


@pytest.mark.slow
def test_train_figures_per_stage(result):
  assert [r['stage'] for r in result['train']] == ['coarse', 'fine', 'joint']
  coarse_forward = next(r for r in result['forward'] if r['model'] == 'coarse'
                        and r['pooling'] == 8 and r['batch_size'] == 2)
  for run in result['train']:
    assert run['batch_size'] == 2 and run['pooling'] == 8
    assert run['images_per_s'] == pytest.approx(2 / run['time_s']['median'])
    assert run['compile_s'] > 0
  coarse_step = result['train'][0]
  # Forward + backward over the whole batch (both devices' shards): more
  # than the forward, less than five forwards.
  ratio = coarse_step['flops_per_image'] / coarse_forward['flops_per_image']
  assert 1.5 < ratio < 5


@pytest.mark.slow
def test_input_wait_fractions(result):
  assert [r['stage'] for r in result['input_wait']] == [
      'coarse', 'fine', 'joint']
  for run in result['input_wait']:
    assert 0 <= run['wait_s'] <= run['next_s'] <= run['wall_s']
    assert run['wait_fraction'] == pytest.approx(run['wait_s'] / run['wall_s'])
    assert run['next_fraction'] == pytest.approx(run['next_s'] / run['wall_s'])
    assert run['images_per_s'] > 0 and run['resident_images_per_s'] > 0
    assert run['worker_count'] == 0 and run['steps'] == 2


class _Output:
  """A step output whose readiness the test sets."""

  def __init__(self, ready):
    self.ready = ready

  def is_ready(self):
    return self.ready


@pytest.mark.parametrize('ready', [False, True])
def test_loop_counts_a_wait_only_when_the_device_ran_out_of_work(ready):
  steps_run = []

  def step(state, batch):
    steps_run.append(batch)
    return state + 1, {'loss': _Output(ready)}

  def fetch():
    time.sleep(0.001)  # Some time inside next().
    return len(steps_run)

  state, timing = benchmark._run_loop(step, 0, fetch, 3)
  assert state == 3 and steps_run == [0, 1, 2]
  assert 0 < timing['next_s'] <= timing['wall_s']
  if ready:  # The device was idle in every fetch.
    assert timing['wait_s'] == timing['next_s']
  else:  # Only the first fetch, before any step was dispatched.
    assert 0 < timing['wait_s'] < timing['next_s']


@pytest.mark.slow
def test_result_is_json_with_memory_and_environment(result):
  loaded = json.loads(json.dumps(result))
  assert loaded['peak_memory']['bytes'] > 0
  assert loaded['peak_memory']['source']
  assert loaded['environment']['backend'] == jax.default_backend()
  assert loaded['settings']['input_size'] == [32, 32]
  text = benchmark.format_report(result)
  assert '[  94.2]' in text and 'train joint' in text and 'waiting' in text
  share = 100 * result['train'][0]['gflops_per_s'] / result['sgemm'][
      'gflops_per_s']
  assert f'GFLOP/s ({share:.0f}% of sgemm)' in text


def test_sgemm_reference_counts_2n3_flops_per_call():
  reference = benchmark.sgemm(size=64, repeats=3, warmup=1)
  assert reference['size'] == 64 and reference['time_s']['n'] == 3
  assert reference['gflops_per_s'] == pytest.approx(
      2 * 64**3 / reference['time_s']['median'] / 1e9)


@pytest.mark.slow
def test_report_sets_torch_beside_jax_per_stage(result):
  twin = [{'stage': run['stage'], 'torch_version': '2.13.0', 'threads': 2,
           'parameters': 123, 'block': 5,
           'time_s': {'median': factor * run['time_s']['median']}}
          for run, factor in zip(result['train'], (2.0, 0.5, 1.0))]
  lines = [line for line in benchmark.format_report(
      {**result, 'torch_train': twin}).splitlines()
           if line.startswith('vs torch')]
  assert len(lines) == 3
  reference = result['sgemm']['gflops_per_s']
  for line, run, factor in zip(lines, result['train'], (2.0, 0.5, 1.0)):
    assert f'torch / jax time {factor:.2f};' in line
    assert (f'2 threads, in turns of 5 steps; parameters torch 123, jax '
            f'{run["parameters"]})') in line
    # Twice the time at the same FLOPs is half the rate, and so on.
    twin_gflops = run['gflops_per_s'] / factor
    assert line.endswith(f'torch at the same FLOPs {twin_gflops:.1f} GFLOP/s '
                         f'({100 * twin_gflops / reference:.0f}% of sgemm)')


def test_a_twin_of_another_size_is_refused_naming_the_stage():
  ours = [{'stage': 'coarse', 'parameters': 10},
          {'stage': 'fine', 'parameters': 5}]
  same = [dict(run) for run in ours]
  benchmark.check_same_network({'train': ours, 'torch_train': same})
  benchmark.check_same_network({'train': ours})  # No twin: nothing to check.
  other = [same[0], {'stage': 'fine', 'parameters': 6}]
  with pytest.raises(RuntimeError, match='fine stage trains 6 parameters, '
                     'the JAX model 5'):
    benchmark.check_same_network({'train': ours, 'torch_train': other})


def test_trained_parameters_count_the_parts_each_stage_trains():
  cascade = {'coarse': {'conv': jnp.zeros((2, 3)), 'bias': jnp.zeros(4)},
             'fine': {'conv': jnp.zeros(5)},
             'spatial': {'kernel': jnp.zeros(7)}}
  assert [benchmark.trained_parameters(cascade, name)
          for name in ('coarse', 'fine', 'joint', 'spatial')] == [10, 5, 15, 7]
  coarse_only = {'conv': jnp.zeros((3, 3)), 'head': jnp.zeros(2)}
  assert benchmark.trained_parameters(coarse_only, 'coarse') == 11


def test_example_batch_matches_the_loader(config):
  source, joint_set = datasets.load_split(config.data, 'train')
  spec = pipeline.crop_spec(config, joint_set)
  loaded = next(iter(pipeline.make_loader(source, spec, 2, train=True,
                                          seed=0)))
  made = benchmark.example_batch(spec, 2)
  assert set(made) == set(loaded) - set(pipeline.HOST_KEYS)
  for key, value in made.items():
    assert value.shape == loaded[key].shape, key
    assert value.dtype == loaded[key].dtype, key
  assert np.all(made['target_weights'] > 0)


def test_train_rejects_fine_stage_on_a_coarse_model(config):
  coarse_config = _tiny_config(config.data.data_dir)
  coarse_config.model.name = 'coarse'
  with pytest.raises(ValueError, match='allowed'):
    benchmark.train(coarse_config, ('fine',), repeats=1, warmup=0)


def test_pmap_cost_analysis_counts_one_device():
  # Why `train` multiplies the FLOPs by the device count.
  num_devices = jax.local_device_count()
  assert num_devices == 2  # conftest
  step = jax.pmap(jnp.dot)
  a, b = jnp.ones((num_devices, 8, 16)), jnp.ones((num_devices, 16, 4))
  compiled, _ = benchmark.compile_fn(step, a, b)
  assert benchmark.flops(compiled) == 2 * 8 * 16 * 4


def test_conv_paths_time_every_path_of_every_non_1x1_shape(config):
  entries = benchmark.conv_paths(config, batch_size=2, repeats=1, warmup=0)
  shapes = benchmark.conv_shapes(config, batch_size=2)
  assert len(entries) == sum(kernel[:2] != (1, 1) for _, kernel in shapes)
  # The fine model's convs run per joint: batch x 11 joints.
  assert {entry['input_shape'][0] for entry in entries} == {2, 22}
  for entry in entries:
    height, width = entry['input_shape'][1:3]
    kh, kw, channels, features = entry['kernel_shape']
    assert (entry['path'] == 'xla') == (height * width >= kh * kw)
    if entry['path'] != 'xla':
      dense_entries = (height * width)**2 * channels * features
      assert (entry['path'] == 'dense') == (
          dense_entries <= conv.DENSE_MAX_ENTRIES)
    assert entry['skipped'] == {}
    assert all(entry[f'{path}_{part}_s'] > 0
               for path in ('xla', 'dense', 'patches')
               for part in ('forward', 'forward_backward'))
  assert {entry['path'] for entry in entries} >= {'xla', 'dense'}


def test_conv_paths_skip_a_path_whose_array_would_be_too_large(
    config, result, monkeypatch):
  # The demo's 96 x 96 maps need a 16 GB dense matrix: such paths are
  # reported, not run. A small cap makes the tiny config show both outcomes.
  cap = 20_000
  monkeypatch.setattr(benchmark, 'SWEEP_MAX_ENTRIES', cap)
  entries = benchmark.conv_paths(config, batch_size=2, repeats=1, warmup=0)
  skipped = []
  for entry in entries:
    batch, height, width, channels = entry['input_shape']
    kh, kw, _, features = entry['kernel_shape']
    sizes = {'xla': 0,
             'dense': (height * width)**2 * channels * features,
             'patches': batch * height * width * kh * kw * channels}
    for path, size in sizes.items():
      times = [entry[f'{path}_{part}_s']
               for part in ('forward', 'forward_backward')]
      if size > cap:
        skipped.append(path)
        assert times == [None, None]
        assert entry['skipped'][path].startswith(f'{size:,} float32 entries')
      else:
        assert path not in entry['skipped']
        assert all(t > 0 for t in times)
  assert {'dense', 'patches'} <= set(skipped)
  assert 'xla' not in skipped
  report = benchmark.format_report({**result, 'conv_paths': entries})
  # Forward and forward + backward of each skipped path.
  assert report.count('skipped') == 2 * len(skipped)
