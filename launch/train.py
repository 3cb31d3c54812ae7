"""Trains a model: python -m launch.train --config=configs/synthetic.py --workdir=DIR

Override any config field on the command line, e.g. --config.train.stage_steps.coarse=100.
Running the same command again on the same --workdir resumes from the latest
checkpoint. SIGTERM or SIGINT (Ctrl-C) stop it after the current step with a
checkpoint of that step; it then exits with status 128 + the signal number
(143, 130), as a process killed by the signal, for schedulers to requeue.
"""

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from cascade_jax.train import distributed
from cascade_jax.train import loop
from cascade_jax.train import preemption
from cascade_jax.train import progress
from launch import cli
from launch import config_overrides

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (configs/*.py).', lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Directory for checkpoints, TensorBoard and results.')
flags.mark_flags_as_required(['config', 'workdir'])
_DISTRIBUTED = flags.DEFINE_enum(
    'distributed', 'auto', distributed.MODES,
    'Train with other processes (jax.distributed). auto: when the three flags '
    'below are given, or srun / mpirun started several processes; on: always '
    '(without the flags JAX detects SLURM, Open MPI, Cloud TPU pods); off: '
    'never.')
_COORDINATOR_ADDRESS = flags.DEFINE_string(
    'coordinator_address', None,
    'host:port of process 0, the same for every process.')
_NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes', None, 'Number of processes (with --coordinator_address).')
_PROCESS_ID = flags.DEFINE_integer(
    'process_id', None, 'This process, 0 to --num_processes - 1.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  progress.quiet_library_logs()
  try:
    distributed.initialize(_DISTRIBUTED.value, _COORDINATOR_ADDRESS.value,
                           _NUM_PROCESSES.value, _PROCESS_ID.value)
  except ValueError as error:
    raise app.UsageError(str(error)) from error
  try:
    loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except preemption.Preempted as stopped:
    logging.warning('%s', stopped)
    sys.exit(stopped.exit_code)


if __name__ == '__main__':
  cli.run(main, flags_parser=config_overrides.parse_flags)
