"""Tests for tests/conftest.py: on CI, missing specimens fail the run."""

import os
import shutil
import subprocess
import sys

import pytest

from tests import conftest
from tests.data import fixtures


def _make_specimens(root):
  for name in conftest.SPECIMEN_DATASETS:
    (root / name).mkdir(parents=True)
  return root


@pytest.mark.parametrize('value', ['true', 'True', '1', 'yes'])
def test_ci_with_missing_specimens_fails(tmp_path, value):
  absent = tmp_path / 'shared' / 'specimens'
  reason = conftest.missing_specimens(absent, {'CI': value})
  assert str(absent) in reason
  assert 'CI needs the shared/ folder beside the clone' in reason
  # A folder without a dataset's specimens fails too, naming what is missing.
  _make_specimens(absent)
  (absent / 'lsp').rmdir()
  reason = conftest.missing_specimens(absent, {'CI': value})
  assert str(absent / 'lsp') in reason and 'mpii' not in reason


@pytest.mark.parametrize('environ', [{}, {'CI': ''}, {'CI': 'false'},
                                     {'CI': '0'}])
def test_without_ci_missing_specimens_skip(tmp_path, environ):
  assert conftest.missing_specimens(tmp_path / 'absent', environ) is None


def test_ci_with_specimens_runs(tmp_path):
  specimens = _make_specimens(tmp_path / 'specimens')
  assert conftest.missing_specimens(specimens, {'CI': 'true'}) is None


def test_session_start_exits_on_ci_without_specimens(tmp_path, monkeypatch):
  monkeypatch.setenv('CI', 'true')
  monkeypatch.setattr(fixtures, 'SPECIMENS', tmp_path / 'absent')
  with pytest.raises(pytest.exit.Exception, match='absent'):
    conftest.pytest_sessionstart(None)
  monkeypatch.setenv('CI', 'false')
  conftest.pytest_sessionstart(None)


def _run_pytest_in_clone(clone, ci):
  """pytest on one passing test in ``clone``, a copy of the test set-up."""
  env = {k: v for k, v in os.environ.items() if k != 'CI'}
  if ci is not None:
    env['CI'] = ci
  return subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
       'tests/test_one.py'], cwd=clone, env=env, capture_output=True,
      text=True, timeout=120, check=False)


def test_ci_run_fails_without_shared_beside_the_clone(tmp_path):
  """The real hook, in a pytest run of a clone without ../shared."""
  clone = tmp_path / 'clone'
  here = os.path.dirname(__file__)
  for relative in ('__init__.py', 'conftest.py', 'data/__init__.py',
                   'data/fixtures.py'):
    (clone / 'tests' / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(os.path.join(here, relative), clone / 'tests' / relative)
  (clone / 'tests' / 'test_one.py').write_text('def test_one():\n  pass\n')

  failed = _run_pytest_in_clone(clone, 'true')
  assert failed.returncode == pytest.ExitCode.USAGE_ERROR, failed.stdout
  assert str(tmp_path / 'shared' / 'specimens') in failed.stdout
  assert '1 passed' not in failed.stdout
  passed = _run_pytest_in_clone(clone, None)
  assert passed.returncode == 0, passed.stdout + passed.stderr
  _make_specimens(tmp_path / 'shared' / 'specimens')
  passed = _run_pytest_in_clone(clone, 'true')
  assert passed.returncode == 0, passed.stdout + passed.stderr
