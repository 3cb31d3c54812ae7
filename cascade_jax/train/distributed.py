"""Multi-process start-up: jax.distributed from launcher flags or the cluster.

Training on several hosts runs the same command once per host (or per GPU);
each process reads its slice of every global batch (pipeline.GlobalBatches)
and feeds its local devices, and the pmapped step's collectives span the
devices of every process. JAX must know its peers before its first
computation: `initialize` decides whether to connect and how, from
``--distributed`` and the explicit ``--coordinator_address`` /
``--num_processes`` / ``--process_id``:

  off:  one process; explicit coordinator flags are an error.
  on:   connect: with the explicit flags if given, else JAX detects the
        cluster itself (SLURM srun, Open MPI, Cloud TPU pods, Kubernetes) and
        fails if there is none.
  auto: connect with the explicit flags if given, else only when the
        environment names a job of several processes (`cluster_job`); a
        single process runs as before.
"""

from __future__ import annotations

from collections.abc import Mapping
import os

from absl import logging
import jax

MODES = ('auto', 'on', 'off')
_EXPLICIT = ('coordinator_address', 'num_processes', 'process_id')


def cluster_job(environ: Mapping[str, str]) -> str | None:
  """The launcher that started this process as one of several, or None.

  Recognises the environments whose variables JAX's own detection reads:
  an `srun` step of several SLURM tasks, `mpirun` with several ranks, a
  multi-host TPU slice on GKE. A Cloud TPU VM pod describes itself through
  its metadata server, not the environment: use ``--distributed=on`` there.
  """
  if 'SLURM_STEP_NODELIST' in environ and _count(environ, 'SLURM_NTASKS') > 1:
    return 'SLURM'
  if ('OMPI_MCA_orte_hnp_uri' in environ
      and _count(environ, 'OMPI_COMM_WORLD_SIZE') > 1):
    return 'Open MPI'
  hosts = environ.get('TPU_WORKER_HOSTNAMES', '')
  if len([h for h in hosts.split(',') if h]) > 1:
    return 'TPU slice'
  return None


def _count(environ: Mapping[str, str], name: str) -> int:
  value = environ.get(name, '1')
  try:
    return int(value)
  except ValueError:
    raise ValueError(f'environment variable {name}={value!r} is not a '
                     'process count') from None


def initialize_args(mode: str, coordinator_address: str | None = None,
                    num_processes: int | None = None,
                    process_id: int | None = None,
                    environ: Mapping[str, str] | None = None) -> dict | None:
  """The keyword arguments for jax.distributed.initialize, or None to run as
  a single process; raises ValueError naming the flags that do not fit."""
  if mode not in MODES:
    raise ValueError(f'--distributed={mode!r}: expected one of {MODES}')
  values = dict(zip(_EXPLICIT, (coordinator_address, num_processes,
                                process_id)))
  given = [name for name, value in values.items() if value is not None]
  if mode == 'off':
    if given:
      raise ValueError(f'--distributed=off contradicts --{", --".join(given)}')
    return None
  if given:
    if len(given) < len(_EXPLICIT):
      missing = [name for name in _EXPLICIT if name not in given]
      raise ValueError('--coordinator_address, --num_processes and '
                       '--process_id go together: missing --'
                       + ', --'.join(missing))
    if num_processes < 1 or not 0 <= process_id < num_processes:
      raise ValueError(f'--process_id={process_id} must be in [0, '
                       f'--num_processes={num_processes})')
    return values
  if mode == 'on':
    return {}  # JAX detects the cluster
  environ = os.environ if environ is None else environ
  return {} if cluster_job(environ) else None


def initialize(mode: str = 'auto', coordinator_address: str | None = None,
               num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """Connects this process to its peers when `initialize_args` says so, then
  logs one line per process (its index, its devices).

  Call before any JAX computation. Processes other than 0 then log warnings
  and errors only, so that the training log is written once.
  """
  args = initialize_args(mode, coordinator_address, num_processes, process_id)
  if args is not None:
    # CPU collectives between processes (JAX 0.10's default, made explicit;
    # accelerators use their own: NCCL, ICI).
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    logging.info('joining the other processes: %s',
                 ', '.join(f'{k}={v}' for k, v in args.items())
                 or 'the cluster as JAX detects it')
    try:
      jax.distributed.initialize(**args)
    except ValueError as error:
      if args:
        raise
      raise ValueError(
          f'--distributed={mode}: JAX found no cluster to join ({error}); '
          'launch with srun or mpirun, or give --coordinator_address, '
          '--num_processes and --process_id') from error
  logging.info('process %d of %d: %d local devices of %d (%s)',
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count(),
               jax.local_devices()[0].platform)
  if jax.process_index() != 0:
    logging.set_verbosity(logging.WARNING)
