"""Builds a config's dataset: python -m launch.build_dataset --config=CONFIG

Prepares the training and evaluation splits of ``config.data`` (generating
the synthetic data, or reading the original FLIC / MPII / LSP files from the
manual-download folder) and prints their sizes. Training does this on first
use anyway; building first checks the manual files before a long job starts.
An unreadable image stops the build naming the file; with
--config.data.bad_images=skip its example is left out instead, listed in the
dataset's metadata.json and in a warning whenever the split is opened.
"""

from absl import app
from ml_collections import config_flags

from cascade_jax.data import datasets
from cascade_jax.train import progress
from launch import cli
from launch import config_overrides

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (configs/*.py).', lock_config=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  progress.quiet_library_logs()
  data = _CONFIG.value.data
  for split in ('train', data.eval_split):
    source, joint_set = datasets.load_split(data, split)
    print(f'{data.name}/{data.builder_config} {split}: {len(source)} examples, '
          f'{joint_set.num_joints} {joint_set.name} joints')


if __name__ == '__main__':
  cli.run(main, flags_parser=config_overrides.parse_flags)
