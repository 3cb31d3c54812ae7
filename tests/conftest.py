"""Test-session set-up: several CPU devices, so pmap paths run in every session;
on CI, the specimens the specimen tests read (they skip without them)."""

import os
import pathlib

# Must happen before jax is imported anywhere.
os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=2').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

from absl import flags  # pylint: disable=g-import-not-at-top

# grain worker processes and absl-based code expect parsed flags.
flags.FLAGS.mark_as_parsed()


import jax  # pylint: disable=g-import-not-at-top,g-bad-import-order
import pytest  # pylint: disable=g-import-not-at-top,g-bad-import-order

from tests.data import fixtures  # pylint: disable=g-import-not-at-top

# The specimen tests read these folders of ../shared/specimens.
SPECIMEN_DATASETS = ('flic', 'lsp', 'mpii')


def on_ci(environ=os.environ) -> bool:
  """Whether ``environ`` sets CI to a true value (as CI services do)."""
  return environ.get('CI', '').strip().lower() in ('1', 'true', 'yes', 'on')


def missing_specimens(specimens: pathlib.Path,
                      environ=os.environ) -> str | None:
  """Why the run must fail, or None: on CI, a missing ``specimens`` folder
  (or dataset folder in it) fails the run instead of skipping the specimen
  tests."""
  if not on_ci(environ):
    return None
  missing = ([specimens] if not specimens.is_dir() else
             [specimens / name for name in SPECIMEN_DATASETS
              if not (specimens / name).is_dir()])
  if not missing:
    return None
  return (f"CI={environ['CI']} but the specimens are missing "
          f"({', '.join(str(path) for path in missing)}): the specimen tests "
          'would be skipped. CI needs the shared/ folder beside the clone '
          '(../shared/specimens relative to the repository).')


def pytest_sessionstart(session):
  """On CI, stops the run before any test if the specimens are missing."""
  del session  # Unused.
  reason = missing_specimens(fixtures.SPECIMENS)
  if reason:
    pytest.exit(reason, returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(autouse=True, scope='module')
def _release_compiled_programs():
  """Drops JAX's compiled programs after each test module.

  XLA CPU maps each executable's code into its own memory regions and JAX's
  caches keep them alive: two test files left 6135 mappings (730 after
  ``jax.clear_caches``), and the whole suite in one process crossed the
  kernel's vm.max_map_count (65530), where an XLA compile aborts or
  segfaults (seen twice in tests/train/test_stages.py, 91 % into the run).
  """
  yield
  jax.clear_caches()


@pytest.fixture(autouse=True, scope='session')
def persistent_compilation_cache(tmp_path_factory):
  """The session's persistent compilation cache directory, used by every test
  and by the processes tests start (through the environment).

  ``train_and_evaluate`` pmaps its steps afresh on every call, so a test that
  trains, resumes and evaluates the same model compiles the same programs
  again, and many tests' tiny models repeat each other's; from the cache they
  load instead. The executables are the compiler's own, so results are
  unchanged bit for bit. Only programs that took >= 0.25 s to compile are
  stored.
  """
  from jax.experimental.compilation_cache import compilation_cache  # pylint: disable=g-import-not-at-top
  cache_dir = str(tmp_path_factory.mktemp('compilation_cache'))
  saved = (jax.config.jax_compilation_cache_dir,
           jax.config.jax_persistent_cache_min_compile_time_secs)
  compilation_cache.reset_cache()
  jax.config.update('jax_compilation_cache_dir', cache_dir)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.25)
  with pytest.MonkeyPatch.context() as environ:  # what started processes read
    environ.setenv('JAX_COMPILATION_CACHE_DIR', cache_dir)
    environ.setenv('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.25')
    yield cache_dir
  jax.config.update('jax_compilation_cache_dir', saved[0])
  jax.config.update('jax_persistent_cache_min_compile_time_secs', saved[1])
  compilation_cache.reset_cache()


def tiny_cascade_config(root: pathlib.Path):
  """The config of ``tiny_cascade``, its data in ``root``/tfds. Tests that
  train a tiny cascade of their own start from it where they can: the same
  programs then load from the session's compilation cache."""
  from configs import synthetic  # pylint: disable=g-import-not-at-top
  config = synthetic.get_config()
  config.data.data_dir = str(root / 'tfds')
  config.data.image_size = (64, 64)
  config.data.input_size = (64, 64)
  config.data.num_train = 8
  config.data.num_test = 6
  config.data.train_split = 'train[4:]'
  config.data.worker_count = 0
  config.model.name = 'cascade'
  config.model.bank_widths = (4, 4, 4, 8)
  config.model.head_widths = (8, 8)
  config.model.fine_bank_widths = (4, 4)
  config.model.fine_hidden_width = 8
  config.train.stage_steps.coarse = 2
  config.train.stage_steps.fine = 1
  config.train.stage_steps.joint = 1
  config.train.batch_size = 4
  config.train.log_every = 1
  config.eval.batch_size = 4
  return config


def three_joint_cascade(with_spatial: bool = False):
  """A narrow 8x cascade of 3 joints for 64 x 64 inputs, with an MRF over
  the chain 0-1-2 if ``with_spatial``: the unit tests' model."""
  from cascade_jax.model import cascade  # pylint: disable=g-import-not-at-top
  from cascade_jax.model import spatial  # pylint: disable=g-import-not-at-top
  spatial_model = (spatial.SpatialModel(num_joints=3, edges=((0, 1), (1, 2)),
                                        stride=8, kernel_size=(15, 15))
                   if with_spatial else None)
  return cascade.CascadeModel(num_joints=3, pooling=8,
                              bank_widths=(4, 4, 4, 8), head_widths=(8, 8),
                              dropout_rate=0.1, fine_bank_widths=(4, 4),
                              fine_hidden_width=8, context=24,
                              spatial=spatial_model)


@pytest.fixture(scope='session')
def tiny_cascade(tmp_path_factory):
  """(workdir, config) of a tiny cascade trained through its three stages
  (2 coarse, 1 fine, 1 joint step) on tiny synthetic data: a real checkpoint,
  as a user's, for the prediction and report tests. The first 4 of the 8
  training images are held out, as for the MRF's choice of joints
  (test_spatial_training.py)."""
  from cascade_jax.train import loop  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('tiny_cascade')
  config = tiny_cascade_config(root)
  workdir = str(root / 'run')
  loop.train_and_evaluate(config, workdir)
  return workdir, config
