"""Test-session set-up: several CPU devices, so pmap paths run in every session."""

import os

# Must happen before jax is imported anywhere.
os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=2').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

from absl import flags  # pylint: disable=g-import-not-at-top

# grain worker processes and absl-based code expect parsed flags.
flags.FLAGS.mark_as_parsed()
