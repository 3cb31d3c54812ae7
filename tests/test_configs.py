"""Every config builds; the paper-size models run a forward pass."""

import importlib
import pathlib

import chex
import jax
import jax.numpy as jnp
import pytest

from cascade_jax import joint_sets
from cascade_jax.eval import precision
from cascade_jax.model import build
from cascade_jax.model import spatial
from cascade_jax.model import standard_cascade
from configs import synthetic_cascade
from configs import synthetic_spatial

CONFIG_NAMES = sorted(p.stem for p in
                      (pathlib.Path(__file__).parents[1] / 'configs').glob('*.py')
                      if p.stem != '__init__')


def _config(name):
  return importlib.import_module(f'configs.{name}').get_config()


@pytest.mark.parametrize('name', CONFIG_NAMES)
def test_config_builds_its_model_and_names_a_joint_set(name):
  config = _config(name)
  joint_set = joint_sets.get(config.data.builder_config)
  model = build.build_model(config.model, joint_set.num_joints)
  assert model.pooling in (4, 8, 16)
  width, height = config.data.input_size
  assert width % config.model.pooling == 0 and height % config.model.pooling == 0
  assert config.train.batch_size > 0


@pytest.mark.parametrize('name, input_hw, num_joints', [
    ('flic_4x', (240, 320), 11),
    ('flic_8x', (240, 320), 11),
    ('flic_16x', (240, 320), 11),
    ('mpii', (256, 256), 16),
])
def test_paper_size_cascades_run_a_forward_pass(name, input_hw, num_joints):
  config = _config(name)
  assert config.model.name == 'cascade'
  assert config.train.fine_loss_weight == 0.1  # the paper's lambda
  assert tuple(config.data.input_size) == input_hw[::-1]
  assert tuple(config.model.bank_widths) == (128, 128, 128, 512)
  assert tuple(config.model.head_widths) == (256, 256)
  model = build.build_model(config.model, num_joints)
  images = jax.random.uniform(jax.random.PRNGKey(1), (1, *input_hw, 3))
  params = jax.jit(lambda x: model.init(jax.random.PRNGKey(0), x,
                                        train=False))(images)
  outputs = jax.jit(lambda p, x: model.apply(p, x, train=False))(
      params, images)
  stride = config.model.pooling
  chex.assert_shape(outputs.coarse_heatmaps,
                    (1, input_hw[0] // stride, input_hw[1] // stride,
                     num_joints))
  context = config.model.context
  chex.assert_shape(outputs.fine_heatmaps, (1, context, context, num_joints))
  chex.assert_tree_all_finite(outputs)
  assert float(jnp.std(outputs.coarse_heatmaps)) > 0


def test_unknown_model_name_is_rejected():
  config = _config('synthetic')
  config.model.name = 'hourglass'
  with pytest.raises(ValueError, match="'cascade'"):
    build.build_model(config.model, 11)


def test_paper_size_configs_include_the_spatial_model():
  kernel_files = set()
  for name, torso_key in (('flic_4x', 'torso_center'),
                          ('flic_8x', 'torso_center'),
                          ('flic_16x', 'torso_center'),
                          ('mpii', 'person_center')):
    config = _config(name)
    assert spatial.is_enabled(config.model), name
    assert config.model.spatial.torso_key == torso_key
    assert config.train.stage_steps.spatial > 0
    kernel_files.add(config.model.spatial.kernel_file)
  # Kernel shapes follow the heat-map size: one file per pooling and dataset.
  assert len(kernel_files) == 4
  assert not spatial.is_enabled(_config('synthetic').model)


@pytest.mark.parametrize('variant', ['4x', '8x', '16x', 'coarse_4x',
                                     'coarse_8x', 'coarse_16x'])
def test_cpu_size_pooling_variants(variant):
  config = synthetic_cascade.get_config(variant)
  pooling = int(variant.removeprefix('coarse_')[:-1])
  model = build.build_model(config.model, 11)
  assert model.pooling == pooling
  assert build.is_cascade(model) == (not variant.startswith('coarse_'))
  steps = config.train.stage_steps
  assert (steps.fine > 0 and steps.joint > 0) == build.is_cascade(model)
  assert steps.coarse == synthetic_cascade.get_config().train.stage_steps.coarse


def test_unknown_cpu_variant_is_rejected():
  with pytest.raises(ValueError, match="'32x'.*coarse_4x"):
    synthetic_cascade.get_config('32x')


def test_the_demo_trains_all_three_stages_of_the_cascade():
  config = _config('synthetic')
  assert config.model.name == 'cascade'
  steps = config.train.stage_steps
  assert steps.coarse > 0 and steps.fine > 0 and steps.joint > 0


def test_synthetic_spatial_starts_from_its_base_which_held_out_the_choice():
  base = synthetic_spatial.get_config('base')
  config = synthetic_spatial.get_config()
  assert not spatial.is_enabled(base.model) and spatial.is_enabled(config.model)
  # The base is the demo's cascade, trained without the held-out scenes.
  demo = _config('synthetic')
  assert base.model == demo.model and base.train == demo.train
  assert base.data.train_split == config.data.train_split == 'train[1000:]'
  assert config.train.spatial_choice_split == 'train[:1000]'
  assert config.train.init_from == 'workdirs/spatial_base'
  assert 'configs/synthetic_spatial.py:base --workdir=workdirs/spatial_base' \
      in synthetic_spatial.__doc__
  steps = config.train.stage_steps
  assert (steps.coarse, steps.fine, steps.joint) == (0, 0, 0)
  assert steps.spatial > 0
  with pytest.raises(ValueError, match="'coarse'.*'spatial', 'base'"):
    synthetic_spatial.get_config('coarse')


def test_study_baseline_gets_the_cascades_fine_inputs():
  """The precision study's standard cascade (Fig. 14a) is built with the same
  heat-map inputs as the cascade it is compared with, and matched in
  parameters with them."""
  config = synthetic_cascade.get_config()
  models = {variant: build.build_model(
      precision.variant_config(config, variant).model, 11)
            for variant in ('cascade_8x', 'standard_cascade_8x')}
  for model in models.values():
    assert model.fine_heatmap_input and model.fine_other_joints_input
  widths = {hint_channels: standard_cascade.matched_extra_width(
      11, config.model.bank_widths[:2], 3, config.model.fine_bank_widths,
      config.model.fine_hidden_width, config.model.context, hint_channels)
            for hint_channels in (0, 2)}
  assert widths[0] != widths[2]  # The hint bank's extra conv is counted.
  assert models['standard_cascade_8x'].extra_width == widths[2]
