"""How every launcher runs: the project's errors as one line, not a traceback.

Every launcher ends with

  cli.run(main)   # or cli.run(main, flags_parser=config_overrides.parse_flags)

so that an error the library raises for the user (a missing checkpoint, an
unreadable image, a bad value: ValueError, OSError, KeyError, RuntimeError,
FloatingPointError and their subclasses) prints as

  error: no checkpoint in /path/checkpoints: train first ...

on stderr and exits with status 1, as absl does for its flag errors and
`config_overrides` for bad --config overrides. --verbosity=1 (or -v 1)
shows the full traceback instead. Other exceptions (TypeError,
AttributeError, IndexError ...) are bugs, not the user's to fix: they keep
their traceback.
"""

from __future__ import annotations

import functools
import sys

from absl import app
from absl import flags

# What the library raises for the user to act on (module docstring).
USER_ERRORS = (ValueError, OSError, KeyError, RuntimeError, FloatingPointError)
# TFDS says that a manual-download folder is missing or empty with an
# AssertionError starting so: the one assertion that is the user's to fix.
TFDS_MANUAL_DIR = 'Manual directory '


def message(error: BaseException) -> str:
  """The error's text as a user reads it (KeyError's without its quotes)."""
  if isinstance(error, KeyError) and len(error.args) == 1:
    return str(error.args[0])
  return str(error) or type(error).__name__


def reporting_errors(main):
  """``main`` with `USER_ERRORS` printed as one 'error: ...' line and exit
  status 1 (the traceback with --verbosity >= 1)."""

  @functools.wraps(main)
  def wrapped(argv):
    try:
      return main(argv)
    except (*USER_ERRORS, AssertionError) as error:
      if (isinstance(error, AssertionError)
          and not str(error).startswith(TFDS_MANUAL_DIR)):
        raise  # a failed assertion is a bug, not the user's to fix
      if flags.FLAGS.is_parsed() and flags.FLAGS.verbosity >= 1:
        raise
      sys.stderr.write(f'error: {message(error)}\n')
      sys.exit(1)

  return wrapped


def run(main, flags_parser=None) -> None:
  """`absl.app.run` of ``main`` with `reporting_errors`."""
  if flags_parser is None:
    app.run(reporting_errors(main))
  else:
    app.run(reporting_errors(main), flags_parser=flags_parser)
