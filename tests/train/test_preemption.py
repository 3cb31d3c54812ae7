"""Preemption: a stop request at a step boundary, SIGTERM and SIGKILL.

The end-to-end tests run the real launcher (python -m launch.train) on a
tiny config, stop it at a step drawn by a seeded RNG, rerun the same command
and compare the saved state (parameters, optimiser state, step, PRNG key) leaf
by leaf, bit for bit, with an uninterrupted run of the same length and
checkpoint interval. ``train.record_batches`` writes a hash of
every batch each step consumed, so the tests also see that the runs took the
same batches in the same order. The subprocesses share a persistent
compilation cache with the in-process run (which compiles), which cuts each
start from ~15 s to ~5 s of CPU.
"""

import importlib.util
import os
import random
import re
import signal
import subprocess
import sys

import chex
import jax
import orbax.checkpoint as ocp
import pytest

from cascade_jax.train import checkpoint
from cascade_jax.train import loop
from cascade_jax.train import preemption

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
STEPS = 40  # the kill comes in the first third: the run must outlast it
CHECKPOINT_EVERY = 5

_CONFIG = '''
from configs import synthetic

def get_config():
  config = synthetic.get_config()
  config.data.data_dir = {data_dir!r}
  config.data.image_size = (64, 64)
  config.data.input_size = (64, 64)
  config.data.num_train = 24
  config.data.num_test = 4
  config.data.worker_count = 0
  config.model.name = 'coarse'
  config.model.bank_widths = (4, 4, 4, 8)
  config.model.head_widths = (8, 8)
  config.train.stage_steps.update(coarse={steps}, fine=0, joint=0)
  config.train.batch_size = 4
  config.train.log_every = 1
  config.train.checkpoint_every = {checkpoint_every}
  config.train.record_batches = True
  return config
'''


@pytest.fixture(scope='module')
def straight(tmp_path_factory, persistent_compilation_cache):
  """(config file, workdir, compilation cache) of an uninterrupted run,
  trained in-process."""
  root = tmp_path_factory.mktemp('preemption')
  config_file = root / 'tiny.py'
  config_file.write_text(_CONFIG.format(
      data_dir=str(root / 'tfds'), steps=STEPS,
      checkpoint_every=CHECKPOINT_EVERY))
  spec = importlib.util.spec_from_file_location('tiny_config', config_file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  workdir = root / 'straight'
  loop.train_and_evaluate(module.get_config(), str(workdir))
  return config_file, workdir, persistent_compilation_cache


def _command(config_file, workdir):
  return [sys.executable, '-m', 'launch.train', f'--config={config_file}',
          f'--workdir={workdir}']


def _environment(cache_dir):
  return {**os.environ,
          'JAX_COMPILATION_CACHE_DIR': cache_dir,
          'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0',
          'JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES': '0'}


def _start_and_wait_for(command, env, step):
  """Starts ``command`` and returns it once it logs a step >= ``step``."""
  process = subprocess.Popen(command, cwd=REPO, env=env,
                             stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, text=True)
  for line in process.stderr:
    logged = re.search(r'step (\d+)/', line)
    if logged and int(logged.group(1)) >= step:
      return process
  process.wait()
  pytest.fail(f'{command} exited ({process.returncode}) before step {step}')


def _finish(command, env):
  result = subprocess.run(command, cwd=REPO, env=env, capture_output=True,
                          text=True)
  assert result.returncode == 0, result.stderr[-3000:]


def _batches(workdir):
  """[(step, batch hash)] in the order the steps consumed them."""
  with open(workdir / 'batches_0.txt') as f:
    return [(int(step), digest) for step, digest in map(str.split, f)]


def _saved_state(workdir):
  """The whole TrainState of the latest checkpoint of ``workdir`` as Orbax
  saved it (no target to fit: nothing saved is left out)."""
  manager = checkpoint.make_manager(str(workdir))
  restored = manager.restore(manager.latest_step(), args=ocp.args.Composite(
      state=ocp.args.StandardRestore()))
  return restored['state']


def _assert_same_run(workdir, straight_workdir):
  """The final state bit-identical, leaf by leaf: parameters, optimiser
  state, step and PRNG key; every batch taken at step s equal to the
  uninterrupted run's batch at step s, and every step done."""
  expected = dict(_batches(straight_workdir))
  assert sorted(expected) == list(range(1, STEPS + 1))
  seen = _batches(workdir)
  for step, digest in seen:
    assert digest == expected[step], f'step {step} took another batch'
  assert {step for step, _ in seen} == set(expected)
  assert checkpoint.make_manager(str(workdir)).latest_step() == STEPS
  final, reference = _saved_state(workdir), _saved_state(straight_workdir)
  assert sorted(final) == ['key', 'opt_state', 'params', 'step']
  assert int(final['step']) == STEPS
  # Adam's moments: two more copies of the parameters.
  assert (len(jax.tree.leaves(final['opt_state']))
          >= 2 * len(jax.tree.leaves(final['params'])))
  chex.assert_trees_all_equal(final, reference)


@pytest.mark.slow
def test_sigkill_at_a_random_step_then_the_same_command_resumes(straight):
  config_file, straight_workdir, cache_dir = straight
  workdir = straight_workdir.parent / 'killed'
  command = _command(config_file, workdir)
  env = _environment(cache_dir)
  kill_at = random.Random(6).randint(3, STEPS // 3)
  process = _start_and_wait_for(command, env, kill_at)
  process.kill()
  assert process.wait() == -signal.SIGKILL
  last_step = _batches(workdir)[-1][0]
  saved = checkpoint.make_manager(str(workdir)).latest_step() or 0
  assert kill_at <= last_step < STEPS, 'killed before the end of training'
  # The last checkpoint: the save at last_step may have been cut short.
  assert saved % CHECKPOINT_EVERY == 0
  assert 0 <= last_step - saved <= CHECKPOINT_EVERY
  steps_before = len(_batches(workdir))

  _finish(command, env)
  resumed = _batches(workdir)[steps_before:]
  assert [step for step, _ in resumed] == list(range(saved + 1, STEPS + 1))
  _assert_same_run(workdir, straight_workdir)


@pytest.mark.slow
def test_sigterm_checkpoints_the_step_in_flight_and_exits(straight):
  config_file, straight_workdir, cache_dir = straight
  workdir = straight_workdir.parent / 'terminated'
  command = _command(config_file, workdir)
  env = _environment(cache_dir)
  stop_at = random.Random(7).randint(3, STEPS // 3)
  process = _start_and_wait_for(command, env, stop_at)
  process.send_signal(signal.SIGTERM)
  log = process.stderr.read()
  assert process.wait() == 128 + signal.SIGTERM, log[-3000:]
  stopped = re.search(r'SIGTERM: stopped after step (\d+), checkpoint in', log)
  assert stopped, log[-3000:]
  step = int(stopped.group(1))
  assert stop_at <= step < STEPS
  # It finished the step it was in, saved it, and took no further batch.
  assert checkpoint.make_manager(str(workdir)).latest_step() == step
  assert _batches(workdir)[-1][0] == step

  _finish(command, env)
  _assert_same_run(workdir, straight_workdir)


def test_a_signal_requests_a_stop_and_a_second_one_goes_through():
  received = []
  record = lambda *_: received.append(1)
  previous = signal.signal(signal.SIGTERM, record)
  try:
    with preemption.StopRequest() as stop:
      assert not stop.requested(1)
      signal.raise_signal(signal.SIGTERM)
      assert stop.requested(2) and stop.signal_number == signal.SIGTERM
      assert not received  # the first signal only asks to stop
      signal.raise_signal(signal.SIGTERM)
      assert received == [1]  # the second reaches the previous handler
    assert signal.getsignal(signal.SIGTERM) is record
  finally:
    signal.signal(signal.SIGTERM, previous)


def test_stop_request_puts_the_previous_handlers_back():
  before = [signal.getsignal(number) for number in preemption.SIGNALS]
  with preemption.StopRequest() as stop:
    assert all(signal.getsignal(number) == stop._handle
               for number in preemption.SIGNALS)
  assert [signal.getsignal(number) for number in preemption.SIGNALS] == before


def test_preempted_exits_as_the_signal_would():
  stopped = preemption.Preempted(12, signal.SIGINT, '/w/checkpoints')
  assert stopped.exit_code == 130
  assert 'SIGINT: stopped after step 12' in str(stopped)
  assert '/w/checkpoints' in str(stopped)
