"""Input-pipeline throughput in images/s per worker process.

  python -m launch.benchmark_input --config=configs/mpii.py --workers=0,1,2 \
      --json_out=/tmp/input_benchmark.json

--dataset=benchmark (default) builds an MPII-shaped dataset of 1280x720 JPEGs
(quality 90) in --data_dir and reads the JPEG bytes (decoded in the transform,
at a reduced DCT scale); --nodecode_in_transform lets TFDS decode instead.
--dataset=config reads the train split of the config's own dataset. The crop,
augmentation and batch size come from the config. Prints a table and writes
JSON.
"""

import json
import tempfile

from absl import app
from absl import flags
from ml_collections import config_flags

from cascade_jax import joint_sets
from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.data import throughput
from launch import cli
from launch import config_overrides

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/mpii.py', 'Experiment config file (configs/*.py).')
_DATASET = flags.DEFINE_enum(
    'dataset', 'benchmark', ['benchmark', 'config'],
    'benchmark: generated MPII-shaped JPEGs; config: the config\'s dataset.')
_WORKERS = flags.DEFINE_list(
    'workers', ['0', '1', '2'],
    'grain worker counts to measure (0 = main process).')
_BATCHES = flags.DEFINE_integer('batches', 20, 'Timed batches per run.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed batches per run.')
_BATCH_SIZE = flags.DEFINE_integer(
    'batch_size', None,
    'Examples per batch (default: config.train.batch_size).')
_NUM_IMAGES = flags.DEFINE_integer('num_images', 200,
                                   'Images of the benchmark dataset.')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'Where the benchmark dataset is built (default: a '
    'temporary folder).')
_DECODE_IN_TRANSFORM = flags.DEFINE_bool(
    'decode_in_transform', True, 'benchmark: read JPEG bytes and decode in '
    'the transform (reduced); false: TFDS decodes the full image.')
_PROFILE = flags.DEFINE_integer(
    'profile_examples', 50, 'Examples for the per-stage split (0: none).')
_JSON_OUT = flags.DEFINE_string('json_out', None, 'Write the results here.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  with tempfile.TemporaryDirectory() as scratch:
    if _DATASET.value == 'benchmark':
      builder = throughput.build_benchmark_dataset(
          _DATA_DIR.value or scratch, _NUM_IMAGES.value)
      source = throughput.benchmark_source(
          builder, encoded=_DECODE_IN_TRANSFORM.value)
      joint_set = joint_sets.MPII
    else:
      source, joint_set = datasets.load_split(config.data, 'train')
    result = throughput.run_benchmark(
        source, pipeline.crop_spec(config, joint_set),
        [int(w) for w in _WORKERS.value],
        batch_size=_BATCH_SIZE.value or config.train.batch_size,
        num_batches=_BATCHES.value, warmup_batches=_WARMUP.value,
        profile_examples=_PROFILE.value)
  result['dataset'] = _DATASET.value
  result['decode_in_transform'] = _DECODE_IN_TRANSFORM.value
  print(throughput.format_table(result))
  if _JSON_OUT.value:
    with open(_JSON_OUT.value, 'w') as f:
      json.dump(result, f, indent=2)


if __name__ == '__main__':
  cli.run(main, flags_parser=config_overrides.parse_flags)
