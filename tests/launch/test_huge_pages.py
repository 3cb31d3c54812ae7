"""launch/__init__.py: ``python -m launch.<name>`` restarts itself once with
glibc's huge-pages tunable, keeping the user's own tunables and choice."""

import os
import pathlib
import subprocess
import sys

import pytest

import launch

ARGV = ['/usr/bin/python3', '-m', 'launch.train', '--workdir=w']


class _Exec:
  """Stands in for os.execv: records the call instead of replacing the
  process."""

  def __init__(self):
    self.calls = []

  def __call__(self, path, argv):
    self.calls.append((path, list(argv)))


@pytest.fixture(autouse=True)
def _glibc(monkeypatch):
  monkeypatch.setattr(launch, '_glibc', lambda: True)


def test_a_launcher_restarts_with_the_tunable():
  environ, execv = {'HOME': '/h'}, _Exec()
  launch.use_huge_pages('-m', ARGV, environ, execv)
  assert environ == {'HOME': '/h', 'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'}
  assert execv.calls == [(sys.executable, ARGV)]


def test_the_users_other_tunables_are_kept():
  environ, execv = {'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2'}, _Exec()
  launch.use_huge_pages('-m', ARGV, environ, execv)
  assert environ['GLIBC_TUNABLES'] == (
      'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1')
  assert len(execv.calls) == 1


def test_the_users_huge_pages_choice_is_kept_and_no_restart():
  # Also what the restarted process sees: it does not restart again.
  environ, execv = {'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=0'}, _Exec()
  launch.use_huge_pages('-m', ARGV, environ, execv)
  assert environ == {'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=0'}
  assert not execv.calls


def test_importing_the_package_does_not_restart():
  # A test or a notebook imports launch: argv[0] is a script, not '-m'.
  environ, execv = {}, _Exec()
  launch.use_huge_pages('/usr/bin/pytest', ARGV, environ, execv)
  assert not environ and not execv.calls


def test_without_glibc_nothing_happens(monkeypatch):
  monkeypatch.setattr(launch, '_glibc', lambda: False)
  environ, execv = {}, _Exec()
  launch.use_huge_pages('-m', ARGV, environ, execv)
  assert not environ and not execv.calls


def test_a_launcher_runs_after_the_restart():
  # The real os.execv: the restarted launcher parses its flags and prints
  # its help (absl exits with status 1 after --helpshort).
  environ = {k: v for k, v in os.environ.items() if k != 'GLIBC_TUNABLES'}
  result = subprocess.run(
      [sys.executable, '-m', 'launch.evaluate_predictions', '--helpshort'],
      capture_output=True, text=True, env=environ, timeout=120, check=False,
      cwd=pathlib.Path(__file__).parents[2])
  assert '--predictions' in result.stdout, result.stderr
