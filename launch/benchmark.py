"""Speed of the models and of training, laid out as paper Table 2.

  python -m launch.benchmark --config=configs/synthetic.py \
      --config.data.data_dir=/tmp/tfds_demo --input_steps=50 \
      --out=/tmp/benchmark_cpu.json
  python -m launch.benchmark --config=configs/flic_8x.py --out=flic.json
  # The paper-size model on a CPU (the training steps would take minutes):
  python -m launch.benchmark --config=configs/flic_8x.py --poolings=8 \
      --batch_sizes=1 --repeats=2 --warmup=1 --train_stages=
  # The demo's training steps against the same networks in PyTorch
  # (pip install -e '.[compare]'):
  python -m launch.benchmark --config=configs/synthetic.py --poolings=8 \
      --batch_sizes=16 --compare=torch

Forward time per image of the coarse model, the fine model and the cascade
for each --poolings at each --batch_sizes (Table 2 beside the paper's K40
figures); the training step of each --train_stages in images/s; compile
time, FLOPs (XLA cost analysis), GFLOP/s (and, for training, its share of
the float32 sgemm GFLOP/s measured in the same run) and peak memory.
--compare=torch times the training steps of launch/torch_twin.py in turns
with ours; --conv_paths times every convolution shape on every conv path.
--input_steps > 0 also runs the training loop on the config's real input
pipeline and reports the fraction of time spent waiting for data (needs the
config's dataset).
Prints tables and writes JSON (cascade_jax/benchmark.py documents fields).
"""

import json

from absl import app
from absl import flags
from ml_collections import config_flags

from cascade_jax import benchmark
from cascade_jax.train import progress
from launch import cli
from launch import config_overrides

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (configs/*.py).')
_POOLINGS = flags.DEFINE_list('poolings', ['4', '8', '16'],
                              'Pooling factors of the forward benchmark.')
_BATCH_SIZES = flags.DEFINE_list(
    'batch_sizes', ['1', '16'],
    'Forward batch sizes: 1 (latency) and a throughput batch.')
_REPEATS = flags.DEFINE_integer('repeats', 10, 'Timed calls per figure.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed calls before timing.')
_TRAIN_STAGES = flags.DEFINE_list(
    'train_stages', list(benchmark.TRAIN_STAGES),
    'Stages whose training step is timed (empty: none).')
_TRAIN_BATCH_SIZE = flags.DEFINE_integer(
    'train_batch_size', None, 'Training batch (default train.batch_size).')
_INPUT_STEPS = flags.DEFINE_integer(
    'input_steps', 0, 'Timed steps per stage of the loop on the real input '
    'pipeline (0: skip; needs the dataset).')
_INPUT_WARMUP = flags.DEFINE_integer(
    'input_warmup', 5, 'Untimed loop steps before the first --input_steps '
    '(past the first epoch, the synthetic data is cached).')
_COMPARE = flags.DEFINE_enum(
    'compare', '', ['', 'torch'],
    'Also time the training steps of the same networks in PyTorch '
    f'(launch/torch_twin.py), in turns with ours (blocks of '
    f'{benchmark.COMPARE_BLOCK} steps); '
    "needs pip install -e '.[compare]'.")
_CONV_PATHS = flags.DEFINE_bool(
    'conv_paths', False,
    'Also time every convolution shape of the config on every path (XLA, '
    'dense, patches): the measurement behind conv.conv_path.')
_SEED = flags.DEFINE_integer('seed', 0, 'Parameter and data seed.')
_OUT = flags.DEFINE_string('out', None, 'Write the results here (JSON).')
flags.mark_flags_as_required(['config'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  progress.quiet_library_logs()
  twin = (_torch_twin().stepper(_CONFIG.value, _TRAIN_BATCH_SIZE.value,
                                _SEED.value)
          if _COMPARE.value == 'torch' else None)
  result = benchmark.run(
      _CONFIG.value, poolings=[int(p) for p in _POOLINGS.value],
      batch_sizes=[int(b) for b in _BATCH_SIZES.value],
      repeats=_REPEATS.value, warmup=_WARMUP.value,
      train_stages=_TRAIN_STAGES.value,
      train_batch_size=_TRAIN_BATCH_SIZE.value,
      input_steps=_INPUT_STEPS.value, input_warmup=_INPUT_WARMUP.value,
      seed=_SEED.value, twin=twin)
  if _CONV_PATHS.value:
    result['conv_paths'] = benchmark.conv_paths(
        _CONFIG.value, _TRAIN_BATCH_SIZE.value, _REPEATS.value, _WARMUP.value)
  print(benchmark.format_report(result))
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(result, f, indent=2)
    print(f'wrote {_OUT.value}')
  benchmark.check_same_network(result)  # After the JSON: nothing is lost.


def _torch_twin():
  """launch.torch_twin, imported only here: PyTorch is an optional extra."""
  try:
    from launch import torch_twin  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise app.UsageError(
        f"--compare=torch needs PyTorch ({error}): pip install -e "
        "'.[compare]'") from error
  return torch_twin


if __name__ == '__main__':
  cli.run(main, flags_parser=config_overrides.parse_flags)
