"""The models' convolution: the matmul paths (dense and patches) equal XLA's
convolution (values and gradients) on every shape where a config uses them."""

import functools
import importlib
import pathlib

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cascade_jax import joint_sets
from cascade_jax.model import build
from cascade_jax.model import conv

CONFIG_NAMES = sorted(p.stem for p in
                      (pathlib.Path(__file__).parents[2] / 'configs').glob('*.py')
                      if p.stem != '__init__')


def _random(shape, seed):
  return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _assert_same_conv(x_shape, kernel_shape, fn=conv.matmul_conv):
  """fn's output and both gradients equal XLA's convolution's; the loss is
  not linear in the output, so a wrong cotangent path shows. Jitted, as the
  model runs (eager, each op compiled alone took 3x the time)."""
  x, kernel = _random(x_shape, 0), _random(kernel_shape, 1) * 0.1
  weights = _random((*x_shape[:3], kernel_shape[-1]), 2)

  def output_and_gradients(f):
    loss = lambda x, k: jnp.sum(weights * jnp.sin(f(x, k)))
    return jax.jit(lambda x, k: (
        f(x, k), jax.grad(loss, argnums=(0, 1))(x, k)))(x, kernel)

  (ours, our_gradients), (xla, xla_gradients) = (
      output_and_gradients(fn), output_and_gradients(conv.xla_conv))
  chex.assert_trees_all_close(ours, xla, atol=1e-4, rtol=1e-4)
  chex.assert_trees_all_close(our_gradients, xla_gradients, atol=2e-4,
                              rtol=1e-4)


MATMUL_PATHS = pytest.mark.parametrize('fn', [conv.dense_conv,
                                               conv.matmul_conv])


@MATMUL_PATHS
@pytest.mark.parametrize('x_shape, kernel_shape', [
    ((2, 6, 6, 5), (9, 9, 5, 7)),    # the demo's bank-1 conv4, narrower
    ((3, 4, 5, 3), (7, 7, 3, 2)),    # non-square map
    ((2, 5, 7, 2), (4, 6, 2, 3)),    # even kernel: 'SAME' pads unequally
    ((2, 3, 2, 3), (2, 5, 3, 2)),    # kernel wider than high, map wider
    ((1, 1, 1, 4), (3, 3, 4, 4)),    # one pixel
])
def test_matmul_paths_equal_xla_conv(x_shape, kernel_shape, fn):
  _assert_same_conv(x_shape, kernel_shape, fn)


@MATMUL_PATHS
def test_matmul_paths_under_vmap_equal_xla_conv(fn):
  # The fine model maps its branch over the joints with a shared kernel.
  over_axis_1 = lambda f: jax.vmap(f, in_axes=(1, None), out_axes=1)
  x_shape, kernel_shape = (2, 3, 4, 4, 5), (7, 7, 5, 6)
  x, kernel = _random(x_shape, 0), _random(kernel_shape, 1)
  loss = lambda f: lambda x, k: jnp.sum(jnp.sin(over_axis_1(f)(x, k)))
  chex.assert_trees_all_close(
      jax.grad(loss(fn), argnums=(0, 1))(x, kernel),
      jax.grad(loss(conv.xla_conv), argnums=(0, 1))(x, kernel),
      atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize('kernel_size', [(7, 7), (4, 6)])
def test_patches_equal_lax_patches_exactly(kernel_size):
  # lax orders a patch (c, i, j); ours is (i, j, c), a HWIO kernel's rows.
  x = _random((2, 5, 3, 4), 0)
  (kh, kw), channels = kernel_size, x.shape[-1]
  reference = jax.lax.conv_general_dilated_patches(
      x, kernel_size, (1, 1), 'SAME',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  reference = reference.reshape(*x.shape[:3], channels, kh, kw).transpose(
      0, 1, 2, 4, 5, 3).reshape(*x.shape[:3], -1)
  chex.assert_trees_all_equal(conv._patches(x, kernel_size), reference)


@pytest.mark.parametrize('kernel_size', [(7, 7), (4, 6)])
def test_col2im_adds_taps_in_order_as_a_padded_sum(kernel_size):
  # The reference adds each tap's column into a padded float32 sum in (i, j)
  # order, as summing one padded copy per tap does: equal bit for bit.
  columns = np.asarray(_random((2, 5, 3, kernel_size[0] * kernel_size[1] * 3),
                               3))
  (kh, kw), (batch, height, width, _) = kernel_size, columns.shape
  top, left = (kh - 1) // 2, (kw - 1) // 2
  taps = columns.reshape(batch, height, width, kh, kw, 3)
  total = np.zeros((batch, height + kh - 1, width + kw - 1, 3), np.float32)
  for i in range(kh):
    for j in range(kw):
      total[:, i:i + height, j:j + width] += taps[:, :, :, i, j]
  expected = total[:, top:top + height, left:left + width]
  chex.assert_trees_all_equal(
      np.asarray(jax.jit(conv._col2im, static_argnums=1)(columns,
                                                        kernel_size)),
      expected)
  # And it is the transpose of _patches (integers: exact in any order).
  integers = jnp.round(jnp.asarray(columns) * 4)
  transpose = jax.linear_transpose(
      lambda x: conv._patches(x, kernel_size),
      jnp.zeros((batch, height, width, 3)))
  chex.assert_trees_all_equal(conv._col2im(integers, kernel_size),
                              transpose(integers)[0])


def test_dense_path_tap_index_by_hand():
  # A 2 x 2 map under a 3x3 kernel (centre tap 4): input pixel p in output
  # pixel q's window at tap (1 + dy, 1 + dx), (dy, dx) = p - q.
  np.testing.assert_array_equal(conv._tap_index(2, 2, 3, 3), [
      [4, 3, 1, 0],
      [5, 4, 2, 1],
      [7, 6, 4, 3],
      [8, 7, 5, 4]])
  # A 1 x 3 map under a 1x2 kernel pads one column after: output q sees
  # q (tap 0) and q + 1 (tap 1); 2 = no tap.
  np.testing.assert_array_equal(conv._tap_index(1, 3, 1, 2), [
      [0, 2, 2],
      [1, 0, 2],
      [2, 1, 0]])


def test_the_path_follows_map_size_and_matrix_size():
  # Maps at least as large as the kernel: XLA's convolution.
  assert conv.conv_path(8, 12, (9, 9), 128, 512) == 'xla'
  assert conv.conv_path(7, 7, (7, 7), 16, 16) == 'xla'
  assert conv.conv_path(1, 1, (1, 1), 4, 4) == 'xla'
  # Smaller: dense while the [H W C, H W O] matrix is small, else patches.
  assert conv.conv_path(5, 5, (7, 7), 32, 16) == 'dense'  # demo fine
  assert conv.conv_path(6, 6, (9, 9), 16, 64) == 'patches'  # demo coarse
  assert conv.conv_path(8, 10, (9, 9), 128, 512) == 'patches'  # paper 8x
  limit = conv.DENSE_MAX_ENTRIES
  assert conv.conv_path(1, 1, (3, 3), limit, 1) == 'dense'
  assert conv.conv_path(1, 1, (3, 3), limit + 1, 1) == 'patches'
  x = jnp.ones((1, 5, 5, 2))
  path = lambda size, features: str(jax.make_jaxpr(conv.conv2d_same)(
      x, jnp.ones((size, size, 2, features))))
  assert 'gather' in path(7, 3) and 'conv_general_dilated' not in path(7, 3)
  assert 'custom_vjp_call' in path(7, limit) and 'gather' not in path(7, limit)
  assert 'conv_general_dilated' in path(5, 3) and 'gather' not in path(5, 3)


def test_conv_module_has_flax_convs_parameters_and_output():
  x = _random((2, 5, 5, 3), 0)
  ours = conv.Conv(4, (7, 7))
  flax_conv = nn.Conv(4, (7, 7), padding='SAME')
  params = ours.init(jax.random.key(3), x)
  chex.assert_trees_all_equal(params, flax_conv.init(jax.random.key(3), x))
  params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias
  chex.assert_trees_all_close(ours.apply(params, x),
                              flax_conv.apply(params, x), atol=1e-5)


@functools.cache
def _matmul_conv_shapes(config_name):
  """{(input shape, kernel shape): path} of every conv of the config's model
  that takes a matmul path, at batch 1 (fine convs per joint)."""
  config = importlib.import_module(f'configs.{config_name}').get_config()
  model = build.build_model(
      config.model, joint_sets.get(config.data.builder_config).num_joints)
  width, height = config.data.input_size
  shapes = {}

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, conv.Conv):
      x = args[0]
      kernel_shape = (*context.module.kernel_size, x.shape[-1],
                      context.module.features)
      path = conv.conv_path(*x.shape[1:3], kernel_shape[:2],
                            *kernel_shape[2:])
      if path != 'xla':
        shapes[((1, *x.shape[1:]), kernel_shape)] = path
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(lambda: model.init(jax.random.key(0),
                                      jnp.zeros((1, height, width, 3)),
                                      train=False))
  return shapes


def test_the_demo_and_the_paper_size_8x_model_use_the_matmul_paths():
  # The shapes issue 16 measured: the demo's 6 x 6 maps, the paper's 8 x 10,
  # and the demo fine model's 5 x 5 windows.
  demo = _matmul_conv_shapes('synthetic')
  assert demo[((1, 6, 6, 16), (9, 9, 16, 64))] == 'patches'
  assert demo[((1, 5, 5, 32), (7, 7, 32, 16))] == 'dense'
  paper = _matmul_conv_shapes('flic_8x')
  assert paper[((1, 8, 10, 128), (9, 9, 128, 512))] == 'patches'


# Shapes already checked in this session: configs share most of theirs, and
# the paper-size ones cost seconds each. A shape is added only once it
# passed, so a config whose shape failed elsewhere fails too.
_EQUAL_SHAPES = set()


@pytest.mark.parametrize('config_name', CONFIG_NAMES)
def test_matmul_paths_equal_xla_conv_on_every_shape_a_config_uses(
    config_name):
  for shapes in _matmul_conv_shapes(config_name):
    if shapes not in _EQUAL_SHAPES:
      _assert_same_conv(*shapes, fn=conv.conv2d_same)
      _EQUAL_SHAPES.add(shapes)
