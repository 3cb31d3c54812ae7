"""launch.cli: every launcher prints the project's errors as one 'error: ...'
line and exits with status 1; --verbosity=1 gives the traceback.

The launchers run in this process (importing one costs nothing once JAX is
loaded): each is imported, its flags set, its main called through
`cli.reporting_errors` as `cli.run` calls it, and the flags it defined are
removed again, since several launchers define the same flag names.
"""

import contextlib
import importlib
import pathlib
import sys

from absl import flags
from absl.testing import flagsaver
import pytest

from launch import cli

REPO = pathlib.Path(__file__).parents[2]
LAUNCHERS = ('benchmark', 'benchmark_input', 'build_dataset', 'eval',
             'evaluate_predictions', 'export_synthetic', 'precision_study',
             'predict', 'report', 'spatial_kernels', 'train')


@contextlib.contextmanager
def _launcher(name: str, **values):
  """The launcher module ``launch.<name>`` with its flags parsed from
  ``values`` (as the command line gives them); afterwards the flags it
  defined are removed."""
  module_name = f'launch.{name}'
  before = set(flags.FLAGS)
  fresh = module_name not in sys.modules
  module = importlib.import_module(module_name)
  try:
    with flagsaver.flagsaver():
      for flag, text in values.items():
        if flag.startswith('config.'):  # an override of a config field
          *path, key = flag.split('.')[1:]
          holder = flags.FLAGS['config'].value
          for part in path:
            holder = holder[part]
          holder[key] = type(holder[key])(text)
        else:
          flags.FLAGS[flag].parse(text)
      yield module
  finally:
    if fresh:
      for flag in set(flags.FLAGS) - before:
        delattr(flags.FLAGS, flag)
      del sys.modules[module_name]


def _cases(tmp: pathlib.Path) -> dict[str, tuple[dict, str]]:
  """Per launcher: flags that make it fail cheaply, and the start of the
  message it must print."""
  manual = tmp / 'manual'
  (manual / 'FLIC').mkdir(parents=True)  # FLIC without its examples.mat
  (manual / 'FLIC' / 'readme.txt').write_text('')
  missing = f'missing file {manual}/FLIC/examples.mat'
  flic = {'config': 'configs/flic_8x.py'}
  (tmp / 'a_file').write_text('')
  return {
      'benchmark': ({'config': 'configs/synthetic.py',
                     'config.data.builder_config': 'nonsense'},
                    "unknown joint set 'nonsense'"),
      'benchmark_input': ({**flic, 'dataset': 'config',
                           'config.data.data_dir': str(tmp),
                           'config.data.manual_dir': str(manual)}, missing),
      'build_dataset': ({**flic, 'config.data.data_dir': str(tmp),
                         'config.data.manual_dir': str(manual)}, missing),
      'eval': ({'config': 'configs/synthetic.py', 'workdir': str(tmp)},
               f'no checkpoint in {tmp}/checkpoints: train first'),
      'evaluate_predictions': ({'dataset': 'mpii',
                                'ground_truth': str(tmp / 'gt.mat'),
                                'predictions': str(tmp / 'pred.mat')},
                               f"ground truth file '{tmp}/gt.mat' does not "
                               'exist'),
      'export_synthetic': ({'format': 'flic', 'out': str(tmp / 'export'),
                            'num_train': '-1'},
                           'num_train must be >= 0, got -1'),
      'precision_study': ({'config': 'configs/synthetic_cascade.py',
                           'workdir': str(tmp), 'variants': 'nonsense'},
                          "unknown variant 'nonsense'"),
      'predict': ({'workdir': str(tmp), 'images': str(tmp / 'x.jpg'),
                   'out': str(tmp / 'out')},
                  f'no such image, folder or pattern: {str(tmp / "x.jpg")!r}'),
      'report': ({'workdir': str(tmp)}, f'no checkpoint in {tmp}/checkpoints'),
      'spatial_kernels': ({**flic, 'config.data.data_dir': str(tmp),
                           'config.data.manual_dir': str(manual)}, missing),
      'train': ({'config': 'configs/synthetic.py',
                 'workdir': str(tmp / 'a_file')}, 'cannot write checkpoints'),
  }


def test_every_launcher_runs_through_cli():
  found = sorted(path.stem for path in (REPO / 'launch').glob('*.py')
                 if 'def main(' in path.read_text())
  assert set(found) == set(LAUNCHERS), found
  for name in LAUNCHERS:
    text = (REPO / 'launch' / f'{name}.py').read_text()
    assert 'cli.run(main' in text and 'app.run(' not in text, name


@pytest.mark.parametrize('name', LAUNCHERS)
def test_a_launcher_prints_one_error_line(name, tmp_path, capsys):
  values, start = _cases(tmp_path)[name]
  with _launcher(name, **values) as module:
    with pytest.raises(SystemExit) as stopped:
      cli.reporting_errors(module.main)([name])
  assert stopped.value.code == 1
  err = capsys.readouterr().err
  assert err.startswith(f'error: {start}'), err
  assert 'Traceback' not in err


def test_verbosity_shows_the_traceback(tmp_path):
  with _launcher('eval', config='configs/synthetic.py', workdir=str(tmp_path),
                 verbosity='1') as module:
    with pytest.raises(FileNotFoundError, match='train first'):
      cli.reporting_errors(module.main)(['eval'])


def test_a_bug_keeps_its_traceback():
  def main(argv):
    raise TypeError(f'a bug {argv}')
  with pytest.raises(TypeError, match='a bug'):
    cli.reporting_errors(main)(['x'])


def test_messages_read_as_written():
  assert cli.message(KeyError('no joint l_foot')) == 'no joint l_foot'
  assert cli.message(ValueError('bad value')) == 'bad value'
  assert cli.message(FileNotFoundError()) == 'FileNotFoundError'
