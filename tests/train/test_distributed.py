"""Multi-process start-up: when to join, and two processes training as one."""

import os
import pathlib
import shutil
import socket
import subprocess
import sys

import chex
from absl import logging as absl_logging
from flax import traverse_util
import jax
import numpy as np
import pytest

from cascade_jax.data import datasets
from cascade_jax.model import build
from cascade_jax.train import checkpoint
from cascade_jax.train import distributed
from cascade_jax.train import events
from cascade_jax.train import loop
from tests.train import distributed_worker

REPO = pathlib.Path(__file__).resolve().parents[2]
SRUN_TWO_TASKS = {'SLURM_JOB_ID': '17', 'SLURM_STEP_NODELIST': 'node[1-2]',
                  'SLURM_NTASKS': '2', 'SLURM_PROCID': '1',
                  'SLURM_LOCALID': '0'}


@pytest.mark.parametrize('environ, job', [
    ({}, None),
    (SRUN_TWO_TASKS, 'SLURM'),
    ({**SRUN_TWO_TASKS, 'SLURM_NTASKS': '1'}, None),
    # An sbatch script outside srun: one process, whatever the job's tasks.
    ({k: v for k, v in SRUN_TWO_TASKS.items() if k != 'SLURM_STEP_NODELIST'},
     None),
    ({'OMPI_MCA_orte_hnp_uri': 'x', 'OMPI_COMM_WORLD_SIZE': '4'}, 'Open MPI'),
    ({'OMPI_MCA_orte_hnp_uri': 'x', 'OMPI_COMM_WORLD_SIZE': '1'}, None),
    ({'TPU_WORKER_HOSTNAMES': 'w0,w1'}, 'TPU slice'),
    ({'TPU_WORKER_HOSTNAMES': 'w0'}, None),
])
def test_cluster_job_from_the_environment(environ, job):
  assert distributed.cluster_job(environ) == job


def test_cluster_job_names_a_bad_count():
  with pytest.raises(ValueError, match=r"SLURM_NTASKS='two'"):
    distributed.cluster_job({**SRUN_TWO_TASKS, 'SLURM_NTASKS': 'two'})


def test_auto_joins_only_a_job_of_several_processes():
  assert distributed.initialize_args('auto', environ={}) is None
  assert distributed.initialize_args('auto', environ=SRUN_TWO_TASKS) == {}


def test_on_leaves_detection_to_jax_and_off_stays_alone():
  assert distributed.initialize_args('on', environ={}) == {}
  assert distributed.initialize_args('off', environ=SRUN_TWO_TASKS) is None


@pytest.mark.parametrize('mode', ['auto', 'on'])
def test_explicit_flags_win_over_the_environment(mode):
  args = distributed.initialize_args(mode, 'host0:1234', 4, 3,
                                     environ=SRUN_TWO_TASKS)
  assert args == {'coordinator_address': 'host0:1234', 'num_processes': 4,
                  'process_id': 3}


@pytest.mark.parametrize('mode, explicit, message', [
    ('auto', ('host0:1234', None, None),
     'missing --num_processes, --process_id'),
    ('on', (None, 2, 0), 'missing --coordinator_address'),
    ('auto', ('host0:1234', 2, 2), r'--process_id=2 must be in \[0, '),
    ('auto', ('host0:1234', 0, 0), r'--process_id=0 must be in \[0, '),
    ('off', ('host0:1234', 2, 0),
     'off contradicts --coordinator_address, --num_processes, --process_id'),
    ('yes', (None, None, None), "--distributed='yes': expected one of"),
])
def test_flags_that_do_not_fit_are_named(mode, explicit, message):
  with pytest.raises(ValueError, match=message):
    distributed.initialize_args(mode, *explicit, environ={})


def test_initialize_connects_with_the_flags_and_logs_the_devices(
    monkeypatch, caplog):
  calls = []
  monkeypatch.setattr(jax.distributed, 'initialize',
                      lambda **kwargs: calls.append(kwargs))
  caplog.set_level('INFO')
  # absl's logger keeps the verbosity an earlier test's flags set (e.g. the
  # launcher tests' --verbosity); INFO must reach caplog here.
  previous = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.INFO)
  try:
    distributed.initialize('on', 'host0:1234', 1, 0)
  finally:
    absl_logging.set_verbosity(previous)
  assert calls == [{'coordinator_address': 'host0:1234', 'num_processes': 1,
                    'process_id': 0}]
  assert (f'process 0 of 1: {jax.local_device_count()} local devices of '
          f'{jax.device_count()} (cpu)') in caplog.text

  calls.clear()
  distributed.initialize('off')
  assert not calls


def test_on_without_a_cluster_says_what_to_give(monkeypatch):
  def no_cluster(**kwargs):
    del kwargs
    raise ValueError('coordinator_address should be defined.')

  monkeypatch.setattr(jax.distributed, 'initialize', no_cluster)
  with pytest.raises(ValueError, match='found no cluster to join.*give '
                     '--coordinator_address, --num_processes and --process_id'):
    distributed.initialize('on')


def test_the_global_batch_must_split_over_every_device(tmp_path):
  config = distributed_worker.tiny_config(str(tmp_path / 'tfds'))
  config.train.batch_size = 2 * jax.device_count() + 1
  with pytest.raises(ValueError, match=(
      rf'batch_size={config.train.batch_size}, the global batch, must be a '
      rf'multiple of jax.device_count\(\)={jax.device_count()} \(the devices '
      'of every process')):
    loop.train_and_evaluate(config, str(tmp_path / 'run'))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _spawn(out_dir, data_dir, cache_dir, parts, devices, *cluster):
  """A worker process with ``devices`` CPU devices; output to a log file.
  The workers share a persistent compilation cache: each runs the loop two
  or three times, and the loop compiles its steps afresh per call."""
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu',
         'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}',
         'JAX_COMPILATION_CACHE_DIR': str(cache_dir),
         'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0.25'}
  log_path = out_dir / f'process_{cluster[-1] if cluster else "alone"}.log'
  with open(log_path, 'w') as log:
    process = subprocess.Popen(
        [sys.executable, '-m', 'tests.train.distributed_worker', str(out_dir),
         str(data_dir), parts, *cluster],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
  process.log_path = log_path
  return process


def _wait(processes, timeout):
  """Waits for all; a hung collective kills them and fails with the logs."""
  try:
    for process in processes:
      process.wait(timeout=timeout)
  except subprocess.TimeoutExpired:
    pass
  failed = []
  for process in processes:
    if process.poll() is None:
      process.kill()
      process.wait()
    if process.returncode:
      failed.append(f'--- {process.log_path} (exit {process.returncode}):\n'
                    + process.log_path.read_text()[-3000:])
  assert not failed, '\n'.join(failed)


def _params(path):
  with np.load(path) as flat:
    return traverse_util.unflatten_dict(dict(flat), sep='/')


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_processes_train_as_one_process_with_four_devices(tmp_path):
  """2 processes x 2 devices and 1 process x 4 devices train the same model
  through the real loop (grain global batches, each process reading its
  slices, dropout 0.5); a run of two processes resumes in one."""
  config = distributed_worker.tiny_config(str(tmp_path / 'tfds'))
  datasets.load_split(config.data, 'train')  # built once, before the workers
  alone, pair = tmp_path / 'alone', tmp_path / 'pair'
  alone.mkdir()
  pair.mkdir()
  initial = distributed_worker.initial_state(config)
  checkpoint.save(checkpoint.make_manager(str(pair / 'alone_run')), 0, initial,
                  config)  # one process's checkpoint, to start from
  initial = jax.device_get(initial.params)
  address = f'localhost:{_free_port()}'
  cache = tmp_path / 'compilation_cache'
  _wait([_spawn(pair, tmp_path / 'tfds', cache, 'loop,init_from', 2, address,
                '2', str(index)) for index in range(2)], timeout=400)
  # The pair's run stopped after its next-to-last step, resumed by one
  # process with four devices.
  steps_done = distributed_worker.STEPS
  shutil.copytree(pair / 'run', alone / 'resumed')
  shutil.rmtree(alone / 'resumed' / 'checkpoints' / str(steps_done))
  _wait([_spawn(alone, tmp_path / 'tfds', cache, 'loop,resume', 4)],
        timeout=300)

  # The real loop: both processes end with the same model, which the shared
  # checkpoint gives back to both, and which one process with four devices
  # trains from the same data; so does one that resumes the pair's run.
  trained = [_params(pair / f'loop_{i}.npz') for i in range(2)]
  chex.assert_trees_all_equal(trained[0], trained[1])
  chex.assert_trees_all_close(_params(alone / 'loop_0.npz'), trained[0],
                              atol=1e-6, rtol=1e-5)
  chex.assert_trees_all_close(_params(alone / 'resumed_0.npz'), trained[0],
                              atol=1e-6, rtol=1e-5)
  moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), trained[0], initial)
  assert max(jax.tree.leaves(moved)) > 1e-3
  for i in range(2):
    chex.assert_trees_all_equal(_params(pair / f'restored_{i}.npz'),
                                trained[0])
  assert sorted(os.listdir(pair / 'run' / 'checkpoints')) == [
      str(steps_done - 1), str(steps_done)]
  # One process (launch.eval) reads the checkpoint of several.
  alone_model = build.build_model(config.model, distributed_worker.NUM_JOINTS,
                                  None)
  evaluated = checkpoint.restore_latest_state(str(pair / 'run'), config,
                                              alone_model)
  chex.assert_trees_all_equal(jax.device_get(evaluated.params), trained[0])
  # And a run of one process starts from it (train.init_from).
  chex.assert_trees_all_equal(
      jax.device_get(checkpoint.restore_params(str(pair / 'run'))), trained[0])

  # train.init_from in several processes, from a run of several or of one.
  for i in range(2):
    chex.assert_trees_all_equal(_params(pair / f'init_from_run_{i}.npz'),
                                trained[0])
    chex.assert_trees_all_equal(_params(pair / f'init_from_alone_run_{i}.npz'),
                                initial)

  # Process 0 logs and writes TensorBoard; process 1 says who it is, then
  # only warnings.
  chief, other = ((pair / f'process_{i}.log').read_text() for i in range(2))
  assert 'process 0 of 2: 2 local devices of 4 (cpu)' in chief
  assert 'process 1 of 2: 2 local devices of 4 (cpu)' in other
  assert f'step {steps_done}/{steps_done} | loss' in chief
  assert f'step {steps_done}/' not in other
  scalars = events.read_scalars(str(pair / 'run' / 'tensorboard'))
  np.testing.assert_array_equal(scalars['train/loss'][0],
                                list(range(1, steps_done + 1)))
