"""Trains a model: python -m launch.train --config=configs/synthetic.py --workdir=DIR

Override any config field on the command line, e.g. --config.train.stage_steps.coarse=100.
Running the same command again on the same --workdir resumes from the latest
checkpoint.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from cascade_jax.train import loop
from cascade_jax.train import progress

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (configs/*.py).', lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Directory for checkpoints, TensorBoard and results.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  progress.quiet_library_logs()
  loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
