"""Tests for cascade_jax.model.build: model choice and mixed precision."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from cascade_jax import heatmaps
from cascade_jax.model import build
from cascade_jax.model import cascade
from cascade_jax.model import conv
from cascade_jax.model import spatial
from cascade_jax.train import stages
from cascade_jax.train import state as state_lib
from cascade_jax.train import steps
from configs import synthetic

NARROW = dict(num_joints=3, pooling=8, bank_widths=(4, 4, 4, 8),
              head_widths=(8, 8), dropout_rate=0.0, fine_bank_widths=(4, 4),
              fine_hidden_width=8, context=24)
IMAGE_SHAPE = (1, 64, 64, 3)


def _batch(seed, size=4):
  """A cascade batch with Gaussian targets at random joints."""
  rng = np.random.default_rng(seed)
  joints = rng.uniform(8, 56, (size, 3, 2)).astype(np.float32)
  visible = np.ones((size, 3), np.float32)
  encoded = [heatmaps.encode(j, v, (8, 8), 8) for j, v in zip(joints, visible)]
  return {'image': rng.integers(0, 256, (size, 64, 64, 3), dtype=np.uint8),
          'targets': np.stack([targets for targets, _ in encoded]),
          'target_weights': np.stack([weights for _, weights in encoded]),
          'joints': joints, 'visible': visible}


def _equations(jaxpr):
  """Every equation of a jaxpr, sub-jaxprs included."""
  for eqn in jaxpr.eqns:
    yield eqn
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else (param,):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          yield from _equations(sub.jaxpr)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          yield from _equations(sub)


def _operand_dtypes(jaxpr, primitive: str) -> list[str]:
  """The first operand's dtype of every ``primitive`` in a jaxpr."""
  return [str(eqn.invars[0].aval.dtype) for eqn in _equations(jaxpr)
          if eqn.primitive.name == primitive]


def _conv_operand_dtypes(monkeypatch, fn, *args) -> list[tuple[str, str]]:
  """(input dtype, kernel dtype) of every convolution ``fn(*args)`` makes,
  whichever path `conv.conv2d_same` takes for it (traced, not run)."""
  operands = []
  with monkeypatch.context() as patch:
    for name, path in conv.PATHS.items():
      patch.setitem(conv.PATHS, name, lambda x, kernel, path=path: (
          operands.append((str(x.dtype), str(kernel.dtype))) or
          path(x, kernel)))
    jax.make_jaxpr(fn)(*args)
  return operands


def test_compute_dtype_from_config():
  config = ml_collections.ConfigDict({'compute_dtype': 'bfloat16'})
  assert build.compute_dtype(config) == jnp.bfloat16
  # Configs saved with checkpoints before the field compute in float32.
  assert build.compute_dtype(ml_collections.ConfigDict()) == jnp.float32
  with pytest.raises(ValueError, match='model.compute_dtype'):
    build.compute_dtype(ml_collections.ConfigDict({'compute_dtype': 'f16'}))


def test_bfloat16_cascade_computes_in_bf16_with_float32_params(monkeypatch):
  torso = jnp.full((2, 2), 32.0)
  mrf = spatial.SpatialModel(num_joints=3, edges=((0, 1), (1, 2)), stride=8,
                             kernel_size=(15, 15))
  model = cascade.CascadeModel(**NARROW, spatial=mrf, dtype=jnp.bfloat16)
  images = jnp.asarray(_batch(0, size=2)['image'], jnp.float32) / 255.0
  init = lambda m: jax.jit(functools.partial(m.init, train=False))(
      jax.random.key(0), images, torso=torso)
  variables = init(model)
  reference = init(cascade.CascadeModel(**NARROW, spatial=mrf))
  # Parameters are float32 and the same as the float32 model's.
  assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {
      jnp.dtype('float32')}
  jax.tree.map(np.testing.assert_array_equal, variables, reference)

  outputs = jax.jit(functools.partial(model.apply, train=False))(
      variables, images, torso=torso)
  for name in ('coarse_heatmaps', 'fine_heatmaps', 'spatial_heatmaps',
               'crop_centres'):
    assert getattr(outputs, name).dtype == jnp.float32, name
  assert np.isfinite(outputs.spatial_heatmaps).all()

  apply = lambda x: model.apply(variables, x, train=False, torso=torso)
  operands = _conv_operand_dtypes(monkeypatch, apply, images)
  jaxpr = jax.make_jaxpr(apply)(images).jaxpr
  # Every conv but the coarse J-wide output computes in bf16: 3 banks x 4
  # convs and 2 head 1x1s; the fine branch's 4 banks x 2 convs and its 1x1.
  assert operands.count(('bfloat16', 'bfloat16')) == 3 * 4 + 2 + 4 * 2 + 1
  assert operands.count(('float32', 'float32')) == 1
  kernels = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(
      variables) if path[-1].key == 'kernel']
  assert len(kernels) == len(operands)
  # And the primitives: XLA's convolutions and the patches path (a custom
  # VJP of two operands, x and the kernel; the max pooling's has one) read
  # bf16, but for that one output conv.
  convs = _operand_dtypes(jaxpr, 'conv_general_dilated') + [
      str(eqn.invars[0].aval.dtype) for eqn in _equations(jaxpr)
      if eqn.primitive.name == 'custom_vjp_call' and len(eqn.invars) == 2]
  assert set(convs) == {'bfloat16', 'float32'}
  assert convs.count('float32') == 1
  # The LCN's local std (the model's only square roots, one per level).
  assert _operand_dtypes(jaxpr, 'sqrt') == ['float32'] * 3


def _model_config(name: str, dtype_name: str) -> ml_collections.ConfigDict:
  """configs/synthetic.py's model section, narrowed, as a user sets it."""
  config = synthetic.get_config().model
  config.name = name
  config.compute_dtype = dtype_name
  config.bank_widths = (4, 4, 4, 8)
  config.head_widths = (8, 8)
  config.fine_bank_widths = (4, 4)
  config.fine_hidden_width = 8
  return config


# bf16 convs per model: the coarse 3 banks x 4 and 2 head 1x1s (its J-wide
# output is float32); the cascade's fine branch on 4 feature banks and the
# demo config's heat-map input x 2 convs, and its 1x1; the standard
# cascade's on 3 image levels and the heat-map input x 3 convs (its extra
# conv included) and its 1x1.
BF16_CONVS = {'cascade': 3 * 4 + 2 + (4 + 1) * 2 + 1,
              'standard_cascade': 3 * 4 + 2 + (3 + 1) * 3 + 1}


@pytest.mark.parametrize('name', ['cascade', 'standard_cascade'])
def test_bfloat16_from_config_through_build_model(name, monkeypatch):
  """model.compute_dtype='bfloat16' reaches every conv of both cascades
  built by build_model; parameters and outputs stay float32."""
  images = jnp.asarray(_batch(0, size=2)['image'], jnp.float32) / 255.0
  models = {dtype_name: build.build_model(_model_config(name, dtype_name),
                                          num_joints=3)
            for dtype_name in ('float32', 'bfloat16')}
  model = models['bfloat16']
  assert model.dtype == jnp.bfloat16
  # Parameters are float32, as the float32 model's (shapes only: a jitted
  # init takes seconds to compile).
  shapes = {dtype_name: jax.eval_shape(functools.partial(
      m.init, train=False), jax.random.key(0), images)
            for dtype_name, m in models.items()}
  assert shapes['bfloat16'] == shapes['float32']
  assert {leaf.dtype for leaf in jax.tree.leaves(shapes['bfloat16'])} == {
      jnp.dtype('float32')}
  rng = np.random.default_rng(0)
  variables = jax.tree.map(
      lambda leaf: rng.normal(0, 0.1, leaf.shape).astype(leaf.dtype),
      shapes['bfloat16'])

  convs = {dtype_name: [x for x, _ in _conv_operand_dtypes(
      monkeypatch, lambda x, m=m: m.apply(variables, x, train=False), images)]
           for dtype_name, m in models.items()}
  kernels = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(
      variables) if path[-1].key == 'kernel']
  assert len(convs['bfloat16']) == len(kernels)
  assert convs['bfloat16'].count('bfloat16') == BF16_CONVS[name]
  assert convs['bfloat16'].count('float32') == 1
  assert convs['float32'] == ['float32'] * len(kernels)

  # Eager: the same computation, without a whole-model compilation.
  outputs = model.apply(variables, images, train=False)
  for field in ('coarse_heatmaps', 'fine_heatmaps', 'crop_centres'):
    value = getattr(outputs, field)
    assert value.dtype == jnp.float32, field
    assert np.isfinite(value).all(), field


@pytest.mark.slow
def test_bfloat16_training_tracks_float32():
  """The same init and batches in bf16 and float32: losses within 5%.

  bf16 rounds each activation to 8 significant bits (relative error up to
  2**-9, about 0.2%); over the ~10 layers of both ConvNets and a few Adam
  steps the two runs drift apart by about 1-2% (1.7% measured at the 8th
  step), while training lowers the loss by more than half: 5% separates
  rounding from a wrong computation.
  """
  config = ml_collections.ConfigDict(dict(
      optimizer='adam', learning_rate=1e-2, warmup_steps=0, weight_decay=0.0,
      grad_clip_norm=0.0))
  tx = stages.make_optimizer(config, 100)
  # The loop's step function; vmap over a 1-long device axis stands in for
  # pmap (same collectives, one compilation).
  step = jax.jit(jax.vmap(functools.partial(
      steps.train_step, stage='joint', is_cascade=True, fine_loss_weight=0.1),
      axis_name=steps.AXIS))
  predict = jax.jit(functools.partial(steps.predict_step, is_cascade=True,
                                      stride=8, subpixel=True))
  # Parameters are float32 in both: one init, each dtype's model applies it.
  initial = state_lib.create_train_state(
      cascade.CascadeModel(**NARROW), IMAGE_SHAPE, jax.random.key(0), tx)
  losses = {}
  for dtype in (jnp.float32, jnp.bfloat16):
    model = cascade.CascadeModel(**NARROW, dtype=dtype)
    state = jax.tree.map(lambda x: jnp.asarray(x)[None],
                         initial.replace(apply_fn=model.apply))
    losses[dtype] = []
    for i in range(6):
      state, metrics = step(state, steps.shard(_batch(i % 2), 1))
      losses[dtype].append(float(metrics['loss'][0]))
  np.testing.assert_allclose(losses[jnp.bfloat16], losses[jnp.float32],
                             rtol=0.05)
  assert losses[jnp.float32][-1] < 0.5 * losses[jnp.float32][0]
  predictions = predict(jax.tree.map(lambda x: x[0], state), _batch(2))
  for name in ('coarse', 'coarse_quarter', 'coarse_dark', 'cascade'):
    joints = predictions[name]
    assert joints.dtype == jnp.float32
    assert np.all((joints >= -0.5) & (joints <= 63.5)), name
