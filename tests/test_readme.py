"""The README's commands work in the environment that its install creates.

Every `python -m launch.*` command the README shows (in code blocks and in
the text) is parsed by its launcher as the shell would run it: the
launcher's flags, required flags, config file and --config overrides
(`config_overrides.parse_flags`, then absl), without running it. The other
commands are checked where they point: make targets, pip extras, and the
`tensorboard` viewer installed beside this Python (run once).
"""

import configparser
import pathlib
import re
import shlex
import subprocess
import sys

from absl.testing import flagsaver
import pytest

from launch import config_overrides
from tests.launch import test_cli

REPO = pathlib.Path(__file__).parents[1]
README = (REPO / 'README.md').read_text()


def _code_lines() -> list[str]:
  """Shell lines of the README's ```bash blocks (continuations joined,
  comments dropped), and its inline `python -m ...` commands."""
  lines = []
  for block in re.findall(r'```bash\n(.*?)```', README, re.S):
    for line in block.replace('\\\n', ' ').splitlines():
      line = re.sub(r'\s+#.*$', '', line).strip()
      if line and not line.startswith('#'):
        lines.append(line)
  inline = re.findall(r'`(python -m launch\.[^`]+)`', README)
  return lines + [' '.join(command.split()) for command in inline]


def _launcher_commands() -> list[tuple[str, list[str]]]:
  commands = []
  for line in _code_lines():
    words = shlex.split(line)
    if 'gcloud' in words[:1]:
      continue  # runs on the TPU workers, inside --command
    if words[:1] == ['srun']:
      words = words[1:]
    if words[:2] == ['python', '-m'] and words[2].startswith('launch.'):
      commands.append((words[2].split('.', 1)[1], words[3:]))
  return commands


COMMANDS = _launcher_commands()


def test_the_readme_shows_every_launcher():
  shown = {name for name, _ in COMMANDS}
  assert set(test_cli.LAUNCHERS) - shown <= {'benchmark_input'}, shown
  assert len(COMMANDS) >= 15


@pytest.mark.parametrize('name,args', COMMANDS,
                         ids=[' '.join([n] + a)[:60] for n, a in COMMANDS])
def test_a_readme_command_parses(name, args, monkeypatch):
  # ml_collections reads the --config.* overrides from sys.argv.
  monkeypatch.setattr(sys, 'argv', [name] + args)
  with test_cli._launcher(name) as module:  # pylint: disable=protected-access
    with flagsaver.flagsaver():
      remaining = config_overrides.parse_flags([name] + args)
      assert remaining == [name], remaining
      assert callable(module.main)


def test_the_other_readme_commands_exist():
  lines = _code_lines()
  makefile = (REPO / 'Makefile').read_text()
  for target in re.findall(r'^make (\w+)', '\n'.join(lines), re.M):
    assert re.search(rf'^{target}:', makefile, re.M), target
  setup = configparser.ConfigParser()
  setup.read(REPO / 'setup.cfg')
  extras = setup['options.extras_require']
  for extra in re.findall(r"pip install -e '\.\[(\w+)\]'", README):
    assert extra in extras, extra
  assert '`tensorboard --logdir workdirs/demo`' in README


def test_tensorboard_is_installed_beside_this_python():
  # `make demo` installs the package; the README then points at the viewer.
  executable = pathlib.Path(sys.executable).parent / 'tensorboard'
  assert executable.exists(), (
      f'{executable} missing: TensorBoard must come with the install '
      '(setup.cfg install_requires)')
  result = subprocess.run([str(executable), '--version_tb'],
                          capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 0, result.stderr
  requires = configparser.ConfigParser()
  requires.read(REPO / 'setup.cfg')
  pinned = [line.strip() for line in
            requires['options']['install_requires'].splitlines()
            if line.strip().startswith('tensorboard==')]
  assert pinned == [f'tensorboard=={result.stdout.strip()}']
