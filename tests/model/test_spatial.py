"""Tests for cascade_jax.model.spatial and .spatial_kernels."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from cascade_jax import heatmaps
from cascade_jax import joint_sets
from cascade_jax.model import spatial
from cascade_jax.model import spatial_kernels

STRIDE = 8


def _edges(joint_set):
  return tuple(tuple(int(i) for i in e) for e in joint_set.edge_indices)


def _model(joint_set, heatmap_size, kernel_file='', pairwise_weight_init=0.0):
  return spatial.SpatialModel(
      num_joints=joint_set.num_joints, edges=_edges(joint_set), stride=STRIDE,
      kernel_size=spatial.kernel_shape(heatmap_size), kernel_file=kernel_file,
      pairwise_weight_init=pairwise_weight_init)


@pytest.mark.parametrize('map_hw, kernel_hw', [
    ((6, 7), (3, 5)), ((12, 12), (23, 23)), ((5, 9), (1, 13)),
])
def test_fft_convolution_equals_direct_convolution(map_hw, kernel_hw):
  rng = np.random.default_rng(0)
  maps = rng.normal(size=(2, *map_hw, 3)).astype(np.float32)
  kernels = rng.uniform(size=(*kernel_hw, 3)).astype(np.float32)
  direct = np.stack([np.stack([
      scipy.signal.convolve2d(maps[b, ..., p], kernels[..., p], mode='same')
      for p in range(3)], -1) for b in range(2)])
  by_fft = jax.jit(spatial.fft_convolve)(jnp.asarray(maps),
                                         jnp.asarray(kernels))
  chex.assert_trees_all_close(by_fft, direct, atol=1e-5)


def test_fft_convolution_rejects_even_kernels():
  with pytest.raises(ValueError, match='odd'):
    spatial.fft_convolve(jnp.zeros((1, 4, 4, 1)), jnp.zeros((4, 3, 1)))


def test_pairs_are_self_skeleton_neighbours_and_torso():
  graph = spatial.pairs(joint_sets.FLIC.num_joints, _edges(joint_sets.FLIC))
  elbow = joint_sets.FLIC.index('l_elbow')
  sources = graph[graph[:, 0] == elbow, 1].tolist()
  assert sources == sorted([elbow, joint_sets.FLIC.index('l_shoulder'),
                            joint_sets.FLIC.index('l_wrist'), 11])
  # Every joint: itself, 2 per edge end in all, and the torso.
  assert len(graph) == 11 + 2 * len(joint_sets.FLIC.edges) + 11


@pytest.mark.parametrize('joint_set, heatmap_size', [
    (joint_sets.FLIC, (30, 40)),   # FLIC 240 x 320 at 8x
    (joint_sets.MPII, (32, 32)),   # MPII 256 x 256 at 8x
    (joint_sets.FLIC, (12, 12)),   # synthetic 'flic', 96 x 96 at 8x
    (joint_sets.MPII, (12, 12)),   # synthetic 'mpii'
])
def test_shapes(joint_set, heatmap_size):
  model = _model(joint_set, heatmap_size)
  heatmap_in = jnp.zeros((2, *heatmap_size, joint_set.num_joints))
  torso = jnp.full((2, 2), 40.0)
  variables = jax.jit(model.init)(jax.random.key(0), heatmap_in, torso)
  num_pairs = 2 * joint_set.num_joints + 2 * len(joint_set.edges)
  kh, kw = 2 * heatmap_size[0] - 1, 2 * heatmap_size[1] - 1
  chex.assert_shape(variables['params']['kernels'], (num_pairs, kh, kw))
  chex.assert_shape(variables['params']['biases'], (num_pairs,))
  out = jax.jit(model.apply)(variables, heatmap_in, torso)
  chex.assert_shape(out, (2, *heatmap_size, joint_set.num_joints))
  chex.assert_tree_all_finite(out)


def test_torso_heatmap_peaks_at_the_torso_cell():
  torso = jnp.array([[8 * 5 + 3.5, 8 * 2 + 3.5], [0.0, 0.0]])
  maps = spatial.torso_heatmap(torso, (6, 7), 8, 1.0)
  chex.assert_shape(maps, (2, 6, 7))
  assert float(maps[0, 2, 5]) == pytest.approx(1.0)
  assert np.unravel_index(int(jnp.argmax(maps[0])), (6, 7)) == (2, 5)


def test_offset_histograms_count_labelled_pairs():
  graph = np.array([[0, 0], [0, 1], [1, 2]])  # joint 2 is the torso
  joints = np.array([[[8.0, 0.0], [0.0, 0.0]],
                     [[16.0, 8.0], [0.0, 0.0]],
                     [[0.0, 0.0], [0.0, 0.0]]])
  visible = np.array([[True, True], [True, True], [False, True]])
  torso = np.array([[0.0, 16.0], [0.0, 16.0], [0.0, 16.0]])
  kernels = spatial_kernels.offset_histograms(
      joints, visible, torso, graph, (5, 5), stride=8, smoothing=0.0)
  expected = np.zeros((3, 5, 5))
  expected[0, 2, 2] = 1.0                       # a joint sits on itself
  expected[1, 2, 3] = expected[1, 3, 4] = 0.5   # offsets (1, 0) and (2, 1)
  expected[2, 0, 2] = 1.0                       # joint 1 two cells above torso
  np.testing.assert_allclose(kernels, expected)


def test_offset_histograms_need_every_pair_labelled_once():
  with pytest.raises(ValueError, match='never labelled together'):
    spatial_kernels.offset_histograms(
        np.zeros((1, 2, 2)), np.array([[True, False]]), np.zeros((1, 2)),
        np.array([[0, 1]]), (3, 3), 8, 0.0)


# Two identical people: a template upper body (FLIC joints) in whole heat-map
# cells; the second person stands 7 cells to the left of the first.
_TEMPLATE = np.array([
    [11.0, 6.0], [13.0, 9.0], [12.0, 12.0],   # l_shoulder, l_elbow, l_wrist
    [7.0, 6.0], [5.0, 9.0], [6.0, 12.0],      # r_shoulder, r_elbow, r_wrist
    [10.0, 12.0], [8.0, 12.0],                # l_hip, r_hip
    [10.0, 3.0], [8.0, 3.0], [9.0, 4.0],      # l_eye, r_eye, nose
])
_RIGHT = _TEMPLATE + np.array([9.0, 1.0])
_LEFT = _RIGHT - np.array([7.0, 0.0])
_MAP_HW = (16, 24)


def _torso(joints):
  """Torso centre in cells: the mean of shoulders and hips."""
  return joints[..., [0, 3, 6, 7], :].mean(-2)


@pytest.fixture(scope='module')
def kernel_file(tmp_path_factory):
  """Kernels from the histograms of 500 jittered template poses."""
  rng = np.random.default_rng(0)
  poses = _TEMPLATE + rng.normal(0.0, 0.7, (500, *_TEMPLATE.shape))
  graph = spatial.pairs(11, _edges(joint_sets.FLIC))
  kernels = spatial_kernels.offset_histograms(
      heatmaps.heatmap_to_input(poses, STRIDE), np.ones((500, 11), bool),
      heatmaps.heatmap_to_input(_torso(poses), STRIDE), graph,
      spatial.kernel_shape(_MAP_HW), STRIDE, smoothing=1.0)
  path = str(tmp_path_factory.mktemp('spatial') / 'kernels.npz')
  spatial_kernels.save(path, kernels, graph, STRIDE, 500)
  return path


def _two_people_heatmaps(annotated, other):
  """[1, H, W, 11]: a Gaussian bump (sigma 1.5 cells) at each joint of both."""
  maps = [heatmaps.encode(heatmaps.heatmap_to_input(person, STRIDE),
                          np.ones(11), _MAP_HW, STRIDE, 1.5)[0]
          for person in (annotated, other)]
  return np.maximum(*maps)[None]


@pytest.mark.parametrize('annotated_on_the_left', [False, True])
def test_torso_picks_the_annotated_one_of_two_identical_people(
    kernel_file, annotated_on_the_left):
  annotated, other = ((_LEFT, _RIGHT) if annotated_on_the_left
                      else (_RIGHT, _LEFT))
  coarse = _two_people_heatmaps(annotated, other)
  torso = heatmaps.heatmap_to_input(_torso(annotated), STRIDE)[None]
  # The paper's product (every pair weighted 1), as training grows it.
  model = _model(joint_sets.FLIC, _MAP_HW, kernel_file,
                 pairwise_weight_init=1.0)
  variables = model.init(jax.random.key(0), coarse, torso)
  log_marginals = model.apply(variables, coarse, torso)
  found, _ = heatmaps.decode(np.asarray(log_marginals), STRIDE)
  expected = heatmaps.heatmap_to_input(annotated, STRIDE)
  np.testing.assert_array_equal(found[0], expected)
  # The coarse heat-maps alone cannot tell the people apart: their argmax is
  # the first maximum in row-major order, the left person for every joint.
  plain, _ = heatmaps.decode(coarse, STRIDE)
  np.testing.assert_array_equal(plain[0],
                                heatmaps.heatmap_to_input(_LEFT, STRIDE))


def test_kernels_start_from_the_file(kernel_file):
  path = kernel_file
  graph = spatial.pairs(11, _edges(joint_sets.FLIC))
  histograms = spatial.load_kernels(path, graph, spatial.kernel_shape(_MAP_HW))
  model = _model(joint_sets.FLIC, _MAP_HW, path)
  params = model.init(jax.random.key(0), jnp.zeros((1, *_MAP_HW, 11)),
                      jnp.zeros((1, 2)))['params']
  is_self = graph[:, 0] == graph[:, 1]
  chex.assert_trees_all_close(
      jax.nn.softplus(params['kernels'])[~is_self],
      np.maximum(histograms, spatial.KERNEL_FLOOR)[~is_self], rtol=1e-4)
  # A joint's own pair starts as a delta: 1 at offset 0, the floor elsewhere.
  delta = np.full(histograms.shape[1:], spatial.KERNEL_FLOOR)
  delta[_MAP_HW[0] - 1, _MAP_HW[1] - 1] = 1.0
  chex.assert_trees_all_close(jax.nn.softplus(params['kernels'])[is_self],
                              np.broadcast_to(delta, (11, *delta.shape)),
                              rtol=1e-4)
  chex.assert_trees_all_close(jax.nn.softplus(params['biases']),
                              np.full(len(graph), 0.01), rtol=1e-5)
  np.testing.assert_array_equal(params['weights'],
                                np.where(is_self, 1.0, 0.0))


@pytest.mark.parametrize('pairwise', [0.0, 1.0])
def test_weights_scale_each_pairs_log_message(kernel_file, pairwise):
  """log m_a = sum_p w_p log(message_p): with w = 1 the paper's product,
  computed here pair by pair with scipy's convolution."""
  rng = np.random.default_rng(3)
  coarse = rng.normal(size=(1, *_MAP_HW, 11)).astype(np.float32)
  torso = np.array([[70.0, 60.0]], np.float32)
  model = _model(joint_sets.FLIC, _MAP_HW, kernel_file, pairwise)
  params = model.init(jax.random.key(0), coarse, torso)['params']
  graph = spatial.pairs(11, _edges(joint_sets.FLIC))
  kernels = np.asarray(jax.nn.softplus(params['kernels']), np.float64)
  biases = np.asarray(jax.nn.softplus(params['biases']), np.float64)
  torso_map = np.asarray(spatial.torso_heatmap(torso, _MAP_HW, STRIDE, 1.0))
  sources = np.concatenate([coarse, torso_map[..., None]], -1)[0]
  expected = np.zeros((*_MAP_HW, 11))
  for p, (a, v) in enumerate(graph):
    message = scipy.signal.convolve2d(np.maximum(sources[..., v], 0),
                                      kernels[p], mode='same') + biases[p]
    weight = 1.0 if a == v else pairwise
    expected[..., a] += weight * np.log(message)
  chex.assert_trees_all_close(model.apply({'params': params}, coarse, torso)[0],
                              expected, atol=2e-4)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_initial_output_is_the_coarse_heatmaps(kernel_file, seed):
  """At initialisation exp(log m_a) = relu(h_a) + softplus(b_aa): the
  coarse heat-maps (up to the kernel floor), so the MRF's argmax is the
  coarse argmax for every joint and example whose map has a positive peak,
  and a spatial stage stopped at any step starts from the coarse model."""
  rng = np.random.default_rng(seed)
  # Trained-looking maps: bumps at random places, a second person, noise.
  people = rng.uniform([2, 2], [22, 14], (3, 2, 11, 2))  # [B, person, J, 2]
  coarse = np.stack([_two_people_heatmaps(*pair)[0] for pair in people])
  coarse = (coarse * rng.uniform(0.3, 1.0, (3, 1, 1, 11))
            + rng.normal(0.0, 0.05, coarse.shape)).astype(np.float32)
  torso = rng.uniform(0, 150, (3, 2)).astype(np.float32)
  model = _model(joint_sets.FLIC, _MAP_HW, kernel_file)
  variables = model.init(jax.random.key(0), coarse, torso)
  log_marginals = jax.jit(model.apply)(variables, coarse, torso)
  chex.assert_trees_all_close(jnp.exp(log_marginals) - 0.01,
                              np.maximum(coarse, 0.0), atol=1e-4)
  found, _ = heatmaps.decode(np.asarray(log_marginals), STRIDE)
  plain, _ = heatmaps.decode(coarse, STRIDE)
  np.testing.assert_array_equal(found, plain)


def test_training_grows_the_pairwise_weights(kernel_file):
  """From the identity start E3's gradient reaches the pairwise weights
  (and through them their kernels) at the first step."""
  coarse = jnp.asarray(_two_people_heatmaps(_RIGHT, _LEFT))
  torso = jnp.asarray(heatmaps.heatmap_to_input(_torso(_RIGHT), STRIDE)[None])
  targets, weights = heatmaps.encode(
      heatmaps.heatmap_to_input(_RIGHT, STRIDE), np.ones(11), _MAP_HW, STRIDE)
  model = _model(joint_sets.FLIC, _MAP_HW, kernel_file)
  params = model.init(jax.random.key(0), coarse, torso)['params']

  def loss(params):
    return spatial.spatial_loss(model.apply({'params': params}, coarse, torso),
                                targets[None], weights[None])

  grads = jax.grad(loss)(params)
  graph = spatial.pairs(11, _edges(joint_sets.FLIC))
  pairwise = graph[:, 0] != graph[:, 1]
  assert np.all(np.abs(np.asarray(grads['weights'])[pairwise]) > 0)
  # Descending it lowers E3 (the torso message favours the annotated person).
  stepped = dict(params, weights=params['weights'] - 0.5 * grads['weights'])
  assert float(loss(stepped)) < float(loss(params))


def test_kernel_file_for_another_graph_or_size_is_rejected(kernel_file):
  path = kernel_file
  graph = spatial.pairs(11, _edges(joint_sets.FLIC))
  with pytest.raises(ValueError, match='recompute them for this input size'):
    spatial.load_kernels(path, graph, (5, 5))
  with pytest.raises(ValueError, match='pairs'):
    spatial.load_kernels(path, graph[:-1], spatial.kernel_shape(_MAP_HW))


@pytest.mark.parametrize('name, coarse', [
    ('random', np.random.default_rng(1).normal(size=(2, 16, 24, 11))),
    ('all zero', np.zeros((2, 16, 24, 11))),
    ('all negative', -np.ones((2, 16, 24, 11))),
])
def test_gradients_are_finite(kernel_file, name, coarse):
  coarse = jnp.asarray(coarse, jnp.float32)
  model = _model(joint_sets.FLIC, _MAP_HW, kernel_file)
  torso = jnp.array([[70.0, 60.0], [10.0, 120.0]])
  variables = model.init(jax.random.key(0), coarse, torso)
  targets, weights = heatmaps.encode(
      heatmaps.heatmap_to_input(_TEMPLATE, STRIDE), np.ones(11), _MAP_HW,
      STRIDE)
  targets = jnp.stack([targets, targets])
  weights = jnp.stack([weights, 0 * weights])

  def loss(params, coarse_maps):
    log_marginals = model.apply({'params': params}, coarse_maps, torso)
    return spatial.spatial_loss(log_marginals, targets, weights)

  value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(
      variables['params'], coarse)
  chex.assert_tree_all_finite((value, grads))
  # The torso message varies over the map even where the coarse maps are
  # flat: the pairwise weights always get a gradient.
  assert float(jnp.abs(grads[0]['weights']).max()) > 0
  if name == 'random':  # The self pairs' kernels see the maps' variation.
    assert float(jnp.abs(grads[0]['kernels']).max()) > 0


def test_spatial_loss_is_the_cross_entropy_of_the_normalised_target():
  rng = np.random.default_rng(2)
  log_m = rng.normal(size=(2, 3, 4, 2)).astype(np.float32)
  targets = rng.uniform(size=(2, 3, 4, 2)).astype(np.float32)
  weights = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32)
  expected = 0.0
  for b in range(2):
    for j in range(2):
      p = np.exp(log_m[b, ..., j]) / np.exp(log_m[b, ..., j]).sum()
      q = targets[b, ..., j] / targets[b, ..., j].sum()
      expected += weights[b, j] * -(q * np.log(p)).sum()
  value = spatial.spatial_loss(log_m, targets, weights)
  assert float(value) == pytest.approx(expected / 4, rel=1e-5)
  # The marginals' scale does not matter.
  shifted = spatial.spatial_loss(log_m + 5.0, targets, weights)
  assert float(shifted) == pytest.approx(float(value), rel=1e-5)


def test_wrong_heatmap_count_or_torso_shape_is_rejected():
  model = _model(joint_sets.FLIC, (4, 4))
  with pytest.raises(ValueError, match='expects 11 heat-maps'):
    model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 10)), jnp.zeros((1, 2)))
  with pytest.raises(ValueError, match='torso must be'):
    model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 11)), jnp.zeros((2,)))


def test_a_joint_the_mrf_steps_aside_from_gets_its_coarse_heatmap(
    kernel_file):
  """'active' = 0 for a joint: its output is its coarse heat-map exactly (so
  its argmax is the coarse argmax), without gradient to the MRF; the other
  joints keep their log-marginals."""
  rng = np.random.default_rng(5)
  coarse = rng.normal(size=(2, *_MAP_HW, 11)).astype(np.float32)
  torso = rng.uniform(0, 150, (2, 2)).astype(np.float32)
  model = _model(joint_sets.FLIC, _MAP_HW, kernel_file, pairwise_weight_init=1.0)
  params = model.init(jax.random.key(0), coarse, torso)['params']
  np.testing.assert_array_equal(params['active'], np.ones(11))
  every = model.apply({'params': params}, coarse, torso)
  stepped_aside = np.array([2, 5, 9])
  active = np.ones(11, np.float32)
  active[stepped_aside] = 0.0
  gated = dict(params, active=jnp.asarray(active))
  out = model.apply({'params': gated}, coarse, torso)
  np.testing.assert_array_equal(out[..., stepped_aside],
                                coarse[..., stepped_aside])
  kept = np.setdiff1d(np.arange(11), stepped_aside)
  np.testing.assert_array_equal(out[..., kept], every[..., kept])
  assert not np.allclose(every[..., stepped_aside], coarse[..., stepped_aside])

  def loss(p):
    return jnp.sum(model.apply({'params': p}, coarse, torso) ** 2)

  grads = jax.grad(loss)(gated)
  graph = spatial.pairs(11, _edges(joint_sets.FLIC))
  aside = np.isin(graph[:, 0], stepped_aside)
  assert np.all(np.asarray(grads['weights'])[aside] == 0)
  assert np.all(np.asarray(grads['kernels'])[aside] == 0)
  assert np.all(np.abs(np.asarray(grads['weights'])[~aside]) > 0)


def test_window_prior_is_the_marginal_at_peak_one_or_the_coarse_map():
  rng = np.random.default_rng(6)
  log_marginals = rng.normal(0.0, 3.0, (2, 4, 5, 3)).astype(np.float32)
  coarse = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
  out = np.where(np.array([True, False, True]), log_marginals, coarse)
  prior = spatial.window_prior(out, coarse, jnp.array([1.0, 0.0, 1.0]))
  marginals = np.exp(log_marginals.astype(np.float64))
  expected = marginals / marginals.max(axis=(1, 2), keepdims=True)
  chex.assert_trees_all_close(prior[..., [0, 2]], expected[..., [0, 2]],
                              rtol=1e-5)
  np.testing.assert_array_equal(prior[..., 1], coarse[..., 1])
