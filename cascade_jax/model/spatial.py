"""MRF spatial model with the torso joint (Sec. 3.3; Tompson et al. NIPS 2014).

Many images hold several people while one is annotated; the coarse model
fires on all of them. The spatial model is one round of sum-product message
passing on a graph over joint locations, in the log domain: the marginal of
joint a is

  log m_a = sum over pairs p = (a, v) of
            w_p * log( softplus(k_p) * relu(h_v) + softplus(b_p) ),

``*`` a 2D convolution (by FFT) at heat-map resolution, h_v the coarse
heat-map of joint v, k_p a kernel, b_p a bias and w_p a weight per pair.
With every w_p = 1 this is the paper's product of messages.

Initialisation (issue 15): the model starts as the identity on the coarse
heat-maps, so that a spatial stage starts from the coarse model's accuracy
instead of below it (measured after training it can still lose a joint
group a point while the mean gains: BUILD_NOTES.md, issue 15):
the joint's own pair (a, a) has weight 1 and a delta kernel, the pairwise
terms (neighbours and torso) weight ``pairwise_weight_init`` (default 0), so
that at initialisation m_a = relu(h_a) + softplus(b_aa) (up to the kernel
floor, 1e-6 of the map's mass): the same argmax as h_a wherever h_a has a
positive maximum. Training grows the pairwise weights (their gradient is the
log-message's covariance with the target, non-zero from the first step); the
pairwise kernels start from the offset histograms. ``pairwise_weight_init``
= 1 starts from the paper's full product instead, which a short stage can
make worse than the coarse model (BUILD_NOTES.md, issue 15).

Stepping aside (issue 15): training optimises E3, not the argmax's accuracy,
and a joint can end a spatial stage less accurate than its coarse heat-map
while the mean gains. The parameter 'active' [J] (1: joint a's output is the
MRF's log-marginal; 0: it is the coarse heat-map itself, so the MRF's argmax
is the coarse argmax exactly) is never trained: at the end of the spatial
stage `cascade_jax.train.spatial_choice` keeps the MRF only for the joints
it makes more accurate on held-out images, and at the end of training only
for those whose cascade it makes more accurate too. The sources v of joint a
are a itself, its skeleton neighbours (`JointSet.edges`) and the torso: the
ground-truth torso position, given with every example (FLIC's torsobox
centre, MPII's objpos), enters as an extra joint (index J) whose heat-map is
a Gaussian at that position. A joint's activations on a person whose torso
is not where the annotation says get no support from the torso message, so
the marginal favours the annotated person.

Conventions: heat-maps are channels-last [B, H, W, J] at the coarse stride s
(`cascade_jax.heatmaps`); kernels have odd sizes (kh, kw) and their centre
cell (kh // 2, kw // 2) is offset 0: cell (kh // 2 + dy, kw // 2 + dx) of k_p
weighs joint a lying (dx, dy) cells from v. Kernels are initialised from
histograms of those offsets over a training split
(`cascade_jax.model.spatial_kernels`, `launch/spatial_kernels.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cascade_jax import heatmaps as heatmap_codec

# Parameters that a decision after training sets and the optimiser never
# touches (`cascade_jax.train.stages` freezes them by name).
DECIDED_PARAMS = ('active',)

# Floor of a kernel cell's initial probability: softplus can reach 0 only at
# -inf, and the floor keeps every initial parameter finite.
KERNEL_FLOOR = 1e-6


def pairs(num_joints: int, edges: Sequence[tuple[int, int]]) -> np.ndarray:
  """[P, 2] int32 (target a, source v) pairs of the graph, sorted by target.

  The sources of joint a: a itself, its skeleton neighbours and the torso
  (source index ``num_joints``).
  """
  neighbours = {a: {a, num_joints} for a in range(num_joints)}
  for a, b in edges:
    for joint in (a, b):
      if not 0 <= joint < num_joints:
        raise ValueError(f'edge {(a, b)} names joint {joint}, outside '
                         f'[0, {num_joints})')
    neighbours[a].add(b)
    neighbours[b].add(a)
  return np.array([(a, v) for a in range(num_joints)
                   for v in sorted(neighbours[a])], np.int32).reshape(-1, 2)


def kernel_shape(heatmap_size: tuple[int, int]) -> tuple[int, int]:
  """(2H - 1, 2W - 1): kernels that reach every offset inside an H x W map."""
  height, width = heatmap_size
  return 2 * height - 1, 2 * width - 1


def fft_convolve(maps: jax.Array, kernels: jax.Array) -> jax.Array:
  """'Same' 2D convolution of each channel with its own kernel, by FFT.

    out[b, y, x, p] = sum_{i, j} kernels[i, j, p]
                      * maps[b, y + kh // 2 - i, x + kw // 2 - j, p],

  zero outside the map (scipy.signal.convolve2d(..., mode='same') for odd
  kernels). Cost O(HW log HW) per channel instead of O(HW kh kw) directly:
  the kernels span the whole heat-map.

  Args:
    maps: [B, H, W, P].
    kernels: [kh, kw, P], kh and kw odd.

  Returns:
    [B, H, W, P].
  """
  _, height, width, _ = maps.shape
  kh, kw, _ = kernels.shape
  if kh % 2 == 0 or kw % 2 == 0:
    raise ValueError(f'kernel sizes must be odd to have a centre cell, got '
                     f'{kh} x {kw}')
  # Padding to the full output size makes the circular convolution linear.
  size = (height + kh - 1, width + kw - 1)
  spectrum = (jnp.fft.rfft2(maps, s=size, axes=(1, 2))
              * jnp.fft.rfft2(kernels, s=size, axes=(0, 1)))
  full = jnp.fft.irfft2(spectrum, s=size, axes=(1, 2))
  return full[:, kh // 2:kh // 2 + height, kw // 2:kw // 2 + width, :]


def torso_heatmap(torso: jax.Array, heatmap_size: tuple[int, int],
                  stride: int, sigma: float) -> jax.Array:
  """[B, H, W] Gaussians (peak 1, ``sigma`` in cells) at ``torso`` [B, 2]
  (x, y) input pixels: the torso joint's heat-map, in the codec's cells."""
  height, width = heatmap_size
  centres = heatmap_codec.input_to_heatmap(torso, stride)  # [B, 2]
  ys = jnp.arange(height, dtype=jnp.float32)[None, :, None]
  xs = jnp.arange(width, dtype=jnp.float32)[None, None, :]
  sq_dist = ((xs - centres[:, 0, None, None]) ** 2
             + (ys - centres[:, 1, None, None]) ** 2)
  return jnp.exp(-sq_dist / (2.0 * sigma ** 2))


def inverse_softplus(y: np.ndarray) -> np.ndarray:
  """x with softplus(x) = y > 0 (float64 numpy, stable for small y)."""
  y = np.asarray(y, np.float64)
  return y + np.log(-np.expm1(-y))


class SpatialModel(nn.Module):
  """The MRF's marginals from coarse heat-maps and the torso position.

  Parameters: 'kernels' [P, kh, kw] and 'biases' [P], both before softplus,
  and 'weights' [P], one per pair of `pairs(num_joints, edges)`; 'active'
  [J] (1 at initialisation), which joints the MRF answers for (the others
  get their coarse heat-map: see the module docstring).

  Attributes:
    num_joints: J, the coarse model's joints (the torso is joint J).
    edges: skeleton edges as joint-index pairs (`JointSet.edge_indices`).
    stride: input pixels per heat-map cell (the coarse pooling factor).
    kernel_size: (kh, kw), odd; `kernel_shape` of the heat-map size covers
      every offset.
    kernel_file: .npz written by `spatial_kernels.save` whose 'kernels' (the
      offset histograms, each summing to 1) initialise the pairwise kernels;
      '' starts them uniform. The self pairs (a, a) start as a delta.
    bias_init: softplus(b_p) at initialisation, the floor of every message.
    torso_sigma: width in cells of the torso joint's Gaussian heat-map.
    pairwise_weight_init: w_p of the pairs (a, v != a) at initialisation; 0
      (default) makes the initial output the coarse heat-maps, 1 is the
      paper's product of messages from the histogram prior.
  """
  num_joints: int
  edges: tuple[tuple[int, int], ...]
  stride: int
  kernel_size: tuple[int, int]
  kernel_file: str = ''
  bias_init: float = 0.01
  torso_sigma: float = 1.0
  pairwise_weight_init: float = 0.0

  @nn.compact
  def __call__(self, heatmaps: jax.Array, torso: jax.Array) -> jax.Array:
    """Log-marginals of every joint.

    Args:
      heatmaps: [B, H, W, J] coarse heat-maps (any sign: ReLU is applied).
      torso: [B, 2] (x, y) torso position in input pixels.

    Returns:
      [B, H, W, J] log-marginals, unnormalised: their argmax is the MRF's
      location, and a softmax over (H, W) its distribution. A joint whose
      'active' is 0 gets its coarse heat-map instead, without gradient.
    """
    batch, height, width, num_joints = heatmaps.shape
    if num_joints != self.num_joints:
      raise ValueError(f'SpatialModel expects {self.num_joints} heat-maps, '
                       f'got shape {heatmaps.shape}')
    if torso.shape != (batch, 2):
      raise ValueError(f'torso must be [B, 2] = [{batch}, 2] (x, y) input '
                       f'pixels, got shape {torso.shape}')
    graph = pairs(self.num_joints, self.edges)
    kernels = self.param('kernels', lambda _: jnp.asarray(
        self._initial_kernels(graph), jnp.float32))
    biases = self.param('biases', lambda _: jnp.full(
        (len(graph),), inverse_softplus(self.bias_init), jnp.float32))
    weights = self.param('weights', lambda _: jnp.asarray(
        initial_weights(graph, self.pairwise_weight_init), jnp.float32))
    active = self.param('active', lambda _: jnp.ones((self.num_joints,),
                                                     jnp.float32))
    torso_map = torso_heatmap(torso, (height, width), self.stride,
                              self.torso_sigma)
    joints = jnp.concatenate([heatmaps, torso_map[..., None]], axis=-1)
    sources = nn.relu(joints)[..., graph[:, 1]]  # [B, H, W, P]
    messages = (fft_convolve(sources,
                             jnp.moveaxis(nn.softplus(kernels), 0, -1))
                + nn.softplus(biases))
    # Rounding in the FFT can leave a hair below the exact (>= 0) convolution;
    # the bias keeps messages positive far above it.
    one_hot = jax.nn.one_hot(graph[:, 0], self.num_joints)  # [P, J]
    log_marginals = (jnp.log(messages) * weights) @ one_hot
    return jnp.where(active > 0.5, log_marginals,
                     jax.lax.stop_gradient(heatmaps))

  def _initial_kernels(self, graph: np.ndarray) -> np.ndarray:
    """[P, kh, kw] kernel parameters: softplus^-1 of the offset histograms
    (uniform without a kernel file), and of a delta for the self pairs."""
    kh, kw = self.kernel_size
    if not self.kernel_file:
      probabilities = np.full((len(graph), kh, kw), 1.0 / (kh * kw))
    else:
      probabilities = np.array(load_kernels(self.kernel_file, graph,
                                            self.kernel_size), np.float64)
    is_self = graph[:, 0] == graph[:, 1]
    probabilities[is_self] = 0.0
    probabilities[is_self, kh // 2, kw // 2] = 1.0
    return inverse_softplus(np.maximum(probabilities, KERNEL_FLOOR))


def window_prior(spatial_heatmaps: jax.Array, coarse_heatmaps: jax.Array,
                 active: jax.Array) -> jax.Array:
  """[B, H, W, J] the map the MRF's windows are cut at, as a heat-map: the
  marginal exp(log m) scaled to peak 1 where the MRF is active, the coarse
  heat-map where it steps aside. The cascade's 'product' fusion weighs the
  fine map by it (`cascade.locations`): the coarse map would pull the answer
  back towards the coarse peak that the MRF moved the window away from.

  Args:
    spatial_heatmaps: `SpatialModel`'s output (log-marginals; the coarse
      heat-map where 'active' is 0), or its flip-test average.
    coarse_heatmaps: [B, H, W, J] the coarse heat-maps.
    active: [J] the model's 'active' parameter.
  """
  peak = jnp.max(spatial_heatmaps, axis=(1, 2), keepdims=True)
  return jnp.where(active > 0.5, jnp.exp(spatial_heatmaps - peak),
                   coarse_heatmaps)


def initial_weights(graph: np.ndarray, pairwise: float) -> np.ndarray:
  """[P] w_p at initialisation: 1 for the self pairs (a, a), ``pairwise``
  for the others."""
  return np.where(graph[:, 0] == graph[:, 1], 1.0, float(pairwise))


def load_kernels(path: str, graph: np.ndarray,
         kernel_size: tuple[int, int]) -> np.ndarray:
  """The [P, kh, kw] kernels of ``path``; raises unless they were computed
  for ``graph`` and ``kernel_size``."""
  with np.load(path) as data:
    kernels, saved_graph = data['kernels'], data['pairs']
  if saved_graph.shape != graph.shape or np.any(saved_graph != graph):
    raise ValueError(f'{path} holds kernels for the pairs '
                     f'{saved_graph.tolist()}, the model has '
                     f'{graph.tolist()}: recompute them for this joint set '
                     'with launch/spatial_kernels.py')
  if kernels.shape[1:] != tuple(kernel_size):
    raise ValueError(f'{path} holds {kernels.shape[1]} x {kernels.shape[2]} '
                     f'kernels, the model needs {kernel_size[0]} x '
                     f'{kernel_size[1]} (2H - 1 x 2W - 1 of its heat-map): '
                     'recompute them for this input size and pooling')
  return kernels


def spatial_loss(log_marginals: jax.Array, targets: jax.Array,
                 weights: jax.Array) -> jax.Array:
  """E3: cross-entropy of the marginals against the normalised targets.

    E3 = 1 / (B * J) * sum_{b, j} w[b, j]
         * -sum_{x, y} q[b, y, x, j] log softmax_{x, y}(log m)[b, y, x, j],

  q the Gaussian target normalised to sum 1. The marginals' scale is
  arbitrary (a product of messages), so they are compared as distributions
  over locations; the normaliser B * J is the one of E1 (losses.py).

  Args:
    log_marginals: [B, H, W, J] from `SpatialModel`.
    targets: [B, H, W, J] Gaussian targets.
    weights: [B, J], 0 for unlabelled joints (whose target is all zero).

  Returns:
    scalar float32.
  """
  log_p = jax.nn.log_softmax(log_marginals, axis=(1, 2))
  mass = jnp.sum(targets, axis=(1, 2), keepdims=True)
  q = targets / jnp.where(mass > 0, mass, 1.0)
  cross_entropy = -jnp.sum(q * log_p, axis=(1, 2))  # [B, J]
  return jnp.mean(weights * cross_entropy)


def default_config(kernel_file: str,
                   torso_key: str) -> ml_collections.ConfigDict:
  """``config.model.spatial`` of an experiment that uses the spatial model.

  Its training is set in ``config.train``: ``stage_steps.spatial``,
  ``spatial_learning_rate`` and ``spatial_loss_weight`` (`stages`).

  Args:
    kernel_file: where `launch/spatial_kernels.py` writes the kernels computed
      from the training split, and where the model reads them.
    torso_key: the record field holding the torso position in image pixels
      ('torso_center' for FLIC and the synthetic data, 'person_center', i.e.
      objpos, for MPII).
  """
  return ml_collections.ConfigDict({
      'enabled': True,
      'kernel_file': kernel_file,
      'torso_key': torso_key,
      'bias_init': 0.01,          # softplus(b) at initialisation
      'torso_sigma': 1.0,         # the torso joint's Gaussian, in cells
      'histogram_smoothing': 1.0,  # Gaussian blur of the histograms, in cells
      # w of the pairwise (neighbour, torso) terms at initialisation: 0 starts
      # from the coarse heat-maps (the MRF's output at step 0), 1 from the
      # paper's product with the histogram prior (issue 15).
      'pairwise_weight_init': 0.0,
  })


def is_enabled(model_config: ml_collections.ConfigDict) -> bool:
  """Whether ``config.model`` turns the spatial model on (absent = off)."""
  return 'spatial' in model_config and bool(model_config.spatial.enabled)


def build(config: ml_collections.ConfigDict, joint_set,
          initial_kernels: bool = True) -> SpatialModel | None:
  """The spatial model of an experiment ``config``, or None when it is off.

  With ``initial_kernels`` the kernels start from the config's kernel file
  (training); without, from uniform kernels, for a model whose parameters
  are restored from a checkpoint (evaluation, prediction), which then needs
  no kernel file.
  """
  if not is_enabled(config.model):
    return None
  settings = config.model.spatial
  if config.model.name != 'cascade':
    raise ValueError(f"model.spatial needs model.name='cascade' (the fine "
                     f'model crops at its argmax), got {config.model.name!r}')
  if initial_kernels and not os.path.exists(settings.kernel_file):
    raise FileNotFoundError(
        f'model.spatial.kernel_file={settings.kernel_file!r} does not exist: '
        'compute the kernels from the training split first with '
        'python -m launch.spatial_kernels --config=<this config>')
  width, height = config.data.input_size
  heatmap_size = (height // config.model.pooling, width // config.model.pooling)
  return SpatialModel(
      num_joints=joint_set.num_joints,
      edges=tuple(tuple(int(i) for i in e) for e in joint_set.edge_indices),
      stride=config.model.pooling,
      kernel_size=kernel_shape(heatmap_size),
      kernel_file=settings.kernel_file if initial_kernels else '',
      bias_init=settings.bias_init,
      torso_sigma=settings.torso_sigma,
      pairwise_weight_init=settings.get('pairwise_weight_init', 0.0))
