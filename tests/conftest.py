"""Test-session set-up: several CPU devices, so pmap paths run in every session."""

import os

# Must happen before jax is imported anywhere.
os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=2').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

from absl import flags  # pylint: disable=g-import-not-at-top

# grain worker processes and absl-based code expect parsed flags.
flags.FLAGS.mark_as_parsed()


import pytest  # pylint: disable=g-import-not-at-top,g-bad-import-order


@pytest.fixture(scope='session')
def tiny_cascade(tmp_path_factory):
  """(workdir, config) of a tiny cascade trained through its three stages
  (2 coarse, 1 fine, 1 joint step) on tiny synthetic data: a real checkpoint,
  as a user's, for the prediction and report tests."""
  from cascade_jax.train import loop  # pylint: disable=g-import-not-at-top
  from configs import synthetic  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('tiny_cascade')
  config = synthetic.get_config()
  config.data.data_dir = str(root / 'tfds')
  config.data.image_size = (64, 64)
  config.data.input_size = (64, 64)
  config.data.num_train = 8
  config.data.num_test = 6
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
  workdir = str(root / 'run')
  loop.train_and_evaluate(config, workdir)
  return workdir, config
