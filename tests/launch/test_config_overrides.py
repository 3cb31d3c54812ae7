"""launch.config_overrides: unknown or ill-typed --config overrides stop a
launcher with a message that names them and lists the valid keys."""

import pathlib
import subprocess
import sys

import pytest

from configs import synthetic
from launch import config_overrides

REPO = pathlib.Path(__file__).parents[2]


@pytest.fixture(name='config')
def _config():
  config = synthetic.get_config()
  config.lock()
  return config


@pytest.mark.parametrize('path,message', [
    ('train.batchsize', r"no key 'batchsize' at train; valid keys there: "
     r'batch_size, checkpoint_every, '),
    ('trian.batch_size', "no key 'trian' at the top level; valid keys there: "
     'data, eval, model, seed, train$'),
    ('train.stage_steps.corse', "no key 'corse' at train.stage_steps; valid "
     'keys there: coarse, fine, joint$'),
    ('train.batch_size.x', 'train.batch_size holds the int 16, not a group'),
])
def test_unknown_keys_list_the_valid_ones(config, path, message):
  with pytest.raises(config_overrides.OverrideError, match=message):
    config_overrides.check_override(config, path, '8')


@pytest.mark.parametrize('path,text,message', [
    ('train.batch_size', 'abc', "=abc: expected int like the config's 16"),
    ('train.learning_rate', 'fast', "expected float like the config's 0.002"),
    ('model.bank_widths', 'abc', r"expected a tuple of int like the config's "
     r"\(16, 16, 16, 64\), .*got \('abc',\)"),
    ('model.bank_widths', '(8, 8, 8, 16.5)', 'expected a tuple of int'),
    ('data.scale_range', '(0.5, "1")', 'expected a tuple of float'),
])
def test_ill_typed_values_say_the_expected_type(config, path, text, message):
  with pytest.raises(config_overrides.OverrideError, match=message):
    config_overrides.check_override(config, path, text)


@pytest.mark.parametrize('path,text', [
    ('train.batch_size', '8'), ('train.learning_rate', '1'),
    ('data.scale_range', '(0.5, 1)'), ('model.bank_widths', '(8, 8, 8, 32)'),
    ('model.name', 'coarse'), ('data.flip_probability', '0'),
    ('train.stage_steps.coarse', None)])
def test_valid_overrides_pass(config, path, text):
  config_overrides.check_override(config, path, text)


def test_overrides_are_read_in_every_flag_form():
  args = ['--config=configs/synthetic.py', '--config.train.batch_size=8',
          '-config.model.name', 'coarse', '--noconfig.eval.subpixel',
          '--workdir=/tmp', '--config.data.input_size=(8, 8)']
  assert config_overrides.overrides(args) == [
      ('train.batch_size', '8'), ('model.name', None),
      ('eval.subpixel', None), ('data.input_size', '(8, 8)')]


def test_every_launcher_with_a_config_checks_its_overrides():
  for path in (REPO / 'launch').glob('*.py'):
    text = path.read_text()
    if 'DEFINE_config_file' in text:
      assert 'flags_parser=config_overrides.parse_flags' in text, path.name


def test_the_train_launcher_stops_before_training(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'launch.train', '--config=configs/synthetic.py',
       '--config.train.batchsize=8', f'--workdir={tmp_path}'],
      cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      'FATAL Flags parsing error: --config.train.batchsize: the config has '
      "no key 'batchsize' at train; valid keys there: "
      + ', '.join(sorted(synthetic.get_config().train.keys()))]
  assert not any(tmp_path.iterdir())
