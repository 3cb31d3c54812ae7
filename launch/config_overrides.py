"""Checks the --config.KEY=VALUE overrides of a launcher's command line.

ml_collections answers an unknown key with a traceback ("Did you mean ...?",
without the valid keys) and takes a tuple of the wrong element type as it
comes (--config.model.bank_widths=abc gives ('abc',), which fails later).
Every launcher with a --config flag runs

  app.run(main, flags_parser=config_overrides.parse_flags)

so that such an override stops the launcher (exit status 1) with one line
that names it and lists the valid keys at its level, or says the type its
value should have. Flag parsing lives here, in launch/, because the library
never reads flags.
"""

from __future__ import annotations

import re
import sys

from absl import app
from absl import flags
import ml_collections
from ml_collections.config_flags import config_flags
from ml_collections.config_flags import tuple_parser

CONFIG_FLAG = 'config'
# absl's parsers of the scalar types, as ml_collections uses them.
_SCALAR_PARSERS = {bool: flags.BooleanParser(), int: flags.IntegerParser(),
                   float: flags.FloatParser()}


class OverrideError(flags.Error):
  """A --config.KEY=VALUE override names no key or has an ill-typed value."""


def parse_flags(argv: list[str]) -> list[str]:
  """app.run's flags_parser: checks the config overrides, then parses as absl.

  Prints the error and exits with status 1, as absl does for its own flag
  errors.
  """
  try:
    expanded = flags.FLAGS.read_flags_from_files(argv[1:], force_gnu=False)
    config_file = _config_file(expanded)
    if config_file is not None:
      config = config_flags.ConfigFileFlagParser(CONFIG_FLAG).parse(
          config_file)
      # A config that fails to load is reported by absl's parse below.
      if isinstance(config, ml_collections.ConfigDict):
        for path, text in overrides(expanded):
          check_override(config, path, text)
  except OverrideError as error:
    sys.stderr.write(f'FATAL Flags parsing error: {error}\n')
    sys.exit(1)
  return app.parse_flags_with_usage(argv)


def _config_file(args: list[str]) -> str | None:
  """The value of --config (--config=FILE or --config FILE), if given."""
  for i, arg in enumerate(args):
    match = re.fullmatch(rf'--?{CONFIG_FLAG}(=(.*))?', arg)
    if match:
      if match.group(1) is not None:
        return match.group(2)
      return args[i + 1] if i + 1 < len(args) else None
  return None


def overrides(args: list[str]) -> list[tuple[str, str | None]]:
  """(dotted key path, value text) of each --config.PATH=VALUE in ``args``;
  the text is None for the forms without '=' (--config.PATH VALUE, the
  boolean --[no]config.PATH), whose values absl checks alone."""
  found = []
  for arg in args:
    match = re.fullmatch(rf'--?(no)?{CONFIG_FLAG}\.([^=]+)(=(.*))?', arg)
    if match:
      found.append((match.group(2),
                    None if match.group(3) is None else match.group(4)))
  return found


def check_override(config: ml_collections.ConfigDict, path: str,
                   text: str | None) -> None:
  """Raises OverrideError unless ``path`` names a key of ``config`` and
  ``text`` (when given) reads as the type of its value there."""
  holder, walked = config, []
  for segment in path.split('.'):
    key = segment.split('[')[0]  # ml_collections' key[index] form.
    where = '.'.join(walked) or 'the top level'
    if not isinstance(holder, ml_collections.ConfigDict):
      raise OverrideError(
          f'--{CONFIG_FLAG}.{path}: {where} holds the '
          f'{type(holder).__name__} {holder!r}, not a group of keys')
    if key not in holder:
      raise OverrideError(
          f'--{CONFIG_FLAG}.{path}: the config has no key {key!r} at '
          f'{where}; valid keys there: {", ".join(sorted(holder.keys()))}')
    holder = holder[key]
    walked.append(segment)
  if text is not None and '[' not in path:
    _check_type(holder, path, text)


def _check_type(default, path: str, text: str) -> None:
  """Raises OverrideError unless ``text`` reads as the type of ``default``."""
  flag = f'--{CONFIG_FLAG}.{path}={text}'
  if type(default) in _SCALAR_PARSERS:
    try:
      _SCALAR_PARSERS[type(default)].parse(text)
    except ValueError as error:
      raise OverrideError(
          f'{flag}: expected {type(default).__name__} like the config\'s '
          f'{default!r} ({error})') from None
  elif isinstance(default, tuple) and default:
    expected = _element_type(default)
    allowed = (int, float) if expected is float else (expected,)
    values = tuple_parser.TupleParser().parse(text)
    if expected is not object and any(type(v) not in allowed for v in values):
      raise OverrideError(
          f'{flag}: expected a tuple of {expected.__name__} like the '
          f'config\'s {default!r}, e.g. --{CONFIG_FLAG}.{path}='
          f'"{default!r}"; got {values!r}')


def _element_type(values: tuple) -> type:
  """The type of a tuple's elements: float for a mix of int and float,
  object for other mixes (not checked)."""
  types = {type(v) for v in values}
  if types == {int, float}:
    return float
  return types.pop() if len(types) == 1 else object
