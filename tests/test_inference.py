"""inference.predict: the flip test on the heat-map grid, symmetric inputs,
mirror-equivariant models."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from cascade_jax import heatmaps
from cascade_jax import inference
from cascade_jax import joint_sets
from cascade_jax.model import cascade
from cascade_jax.model import crop

JOINTS = joint_sets.FLIC
PERMUTATION = tuple(JOINTS.flip_permutation.tolist())
STRIDE = 8
CONTEXT = 16


def test_mirror_heatmaps_brings_the_mirrored_targets_back_exactly():
  # Targets of a person and of its mirror image (x -> W - 1 - x, left and
  # right swapped): mirroring the second gives the first, with no shift.
  width, height = 64, 48
  rng = np.random.default_rng(0)
  joints = rng.uniform([0, 0], [width - 1, height - 1], (JOINTS.num_joints, 2))
  mirrored = np.stack([width - 1 - joints[:, 0], joints[:, 1]], -1)
  mirrored = mirrored[JOINTS.flip_permutation]
  visible = np.ones(JOINTS.num_joints)
  size = (height // STRIDE, width // STRIDE)
  targets, _ = heatmaps.encode(joints, visible, size, STRIDE)
  mirror_targets, _ = heatmaps.encode(mirrored, visible, size, STRIDE)
  chex.assert_trees_all_close(
      np.asarray(inference.mirror_heatmaps(mirror_targets[None], width,
                                           STRIDE, PERMUTATION))[0],
      targets, atol=1e-6)


def _pooled_planes(images):
  """[B, H, W, 3] -> [B, H, W, J]: joint j sees colour channel
  min(j, perm[j]) % 3, so mirrored joints see the same colour."""
  channels = [min(j, p) % 3 for j, p in enumerate(PERMUTATION)]
  return images[..., np.asarray(channels)]


def _equivariant_coarse(variables, images, train, **unused):
  """A coarse 'model' whose heat-maps are mirror-equivariant by
  construction: per joint, its colour plane averaged over stride cells."""
  del variables, train, unused
  planes = _pooled_planes(images)
  batch, height, width, joints = planes.shape
  return planes.reshape(batch, height // STRIDE, STRIDE, width // STRIDE,
                        STRIDE, joints).mean(axis=(2, 4))


def _equivariant_cascade(variables, images, train, crop_centres=None,
                         torso=None):
  """A cascade 'model', mirror-equivariant by construction: the coarse maps
  above, and as fine maps each joint's colour plane in its window. With a
  torso, an 'MRF' too: the coarse maps weighted by a Gaussian around the
  torso, whose argmax places the windows (as `cascade.CascadeModel`)."""
  coarse_maps = _equivariant_coarse(variables, images, train)
  spatial_maps = None
  if torso is not None:
    height, width = coarse_maps.shape[1:3]
    cells = heatmaps.heatmap_to_input(jnp.stack(jnp.meshgrid(
        jnp.arange(width), jnp.arange(height)), -1), STRIDE)  # [h, w, 2]
    distance = jnp.sum((cells[None] - torso[:, None, None]) ** 2, -1)
    spatial_maps = coarse_maps * jnp.exp(-distance / 800.0)[..., None]
  if crop_centres is None:
    crop_centres, _ = heatmaps.decode(
        coarse_maps if spatial_maps is None else spatial_maps, STRIDE)
  origins = crop.window_origins(crop_centres, images.shape[1:3], CONTEXT)
  windows = crop.crop_windows(_pooled_planes(images), origins, CONTEXT, 1)
  fine_maps = jnp.einsum('bjuvj->buvj', windows)
  return cascade.CascadeOutputs(coarse_maps, fine_maps, crop_centres, origins,
                                spatial_maps)


def test_flip_on_a_mirror_equivariant_model_changes_nothing():
  images = jax.random.uniform(jax.random.PRNGKey(1), (3, 48, 64, 3))
  torso = jnp.array([[20.0, 25.0], [40.0, 20.0], [31.5, 23.5]])
  # A coarse model; a cascade; a cascade with an 'MRF' fed the torso.
  for apply_fn, is_cascade, inputs in (
      (_equivariant_coarse, False, (images,)),
      (_equivariant_cascade, True, (images,)),
      (_equivariant_cascade, True, (images, torso))):
    kwargs = dict(is_cascade=is_cascade, stride=STRIDE, fusion='product',
                  return_heatmaps=True)
    # The 'MRF' answers for every joint ('active', read by the fusion).
    params = ({'spatial': {'active': jnp.ones(JOINTS.num_joints)}}
              if len(inputs) == 2 else {})
    plain = jax.jit(functools.partial(inference.predict, apply_fn,
                                      **kwargs))(params, *inputs)
    flipped = jax.jit(functools.partial(
        inference.predict, apply_fn, flip_permutation=PERMUTATION,
        **kwargs))(params, *inputs)
    assert set(plain) == set(flipped)
    assert ('spatial' in plain) == (len(inputs) == 2)
    chex.assert_trees_all_close(flipped, plain, atol=1e-5)


def test_the_cascade_is_weighed_by_the_mrf_map_its_windows_were_cut_at():
  """With an MRF, 'product' multiplies the fine maps by the MRF's marginal
  (exp of its output, scaled to peak 1) for the joints it answers for and
  by the coarse map for those it steps aside from; 'cascade_no_spatial'
  (windows at the coarse argmax) by the coarse map."""
  images = jax.random.uniform(jax.random.PRNGKey(2), (3, 48, 64, 3))
  torso = jnp.array([[20.0, 25.0], [40.0, 20.0], [31.5, 23.5]])
  active = np.ones(JOINTS.num_joints, np.float32)
  active[[1, 4]] = 0.0  # the elbows: coarse
  got = inference.predict(_equivariant_cascade, {'spatial': {'active': active}},
                          images, torso, is_cascade=True, stride=STRIDE,
                          fusion='product')
  outputs = _equivariant_cascade({}, images, False, torso=torso)
  log_m = np.asarray(outputs.spatial_heatmaps, np.float64)
  marginal = np.exp(log_m - log_m.max(axis=(1, 2), keepdims=True))
  prior = np.where(active > 0.5, marginal,
                   np.asarray(outputs.coarse_heatmaps, np.float64))
  expected, _ = cascade.locations(outputs, STRIDE, 'product',
                                  prior=jnp.asarray(prior, jnp.float32))
  np.testing.assert_allclose(got['cascade'], expected, atol=1e-5)
  by_coarse, _ = cascade.locations(outputs, STRIDE, 'product')
  assert not np.allclose(got['cascade'], by_coarse)  # the prior matters here
  np.testing.assert_allclose(got['cascade'][:, [1, 4]],
                             np.asarray(by_coarse)[:, [1, 4]], atol=1e-5)


def _random_cascade():
  """A small cascade (one pyramid level: it compiles fast) at random init."""
  model = cascade.CascadeModel(
      num_joints=JOINTS.num_joints, pooling=STRIDE, bank_widths=(4, 4, 4, 8),
      head_widths=(8, 8), num_levels=1, fine_bank_widths=(4, 4),
      fine_hidden_width=8, context=CONTEXT)
  init = jax.jit(lambda key: model.init(key, jnp.zeros((1, 32, 48, 3)),
                                        train=False)['params'])
  return model, init(jax.random.PRNGKey(0))


def test_a_symmetric_input_gives_a_symmetric_answer():
  half = jax.random.uniform(jax.random.PRNGKey(2), (2, 32, 24, 3))
  images = jnp.concatenate([half, half[:, :, ::-1]], axis=2)  # [2, 32, 48]
  model, params = _random_cascade()
  got = jax.jit(functools.partial(
      inference.predict, model.apply, is_cascade=True, stride=STRIDE,
      fusion='fine', flip_permutation=PERMUTATION, return_heatmaps=True))(
          params, images)
  # The averaged heat-maps are their own mirror image ...
  chex.assert_trees_all_close(
      inference.mirror_heatmaps(got['heatmaps'], 48, STRIDE, PERMUTATION),
      got['heatmaps'], atol=1e-6)
  # ... so left and right joints are each other's mirror image, for the
  # coarse argmax and the cascade's answer, with equal scores.
  pairs = [j for j, p in enumerate(PERMUTATION) if p != j]
  assert pairs
  for name in ('coarse', 'cascade'):
    mirrored = np.asarray(inference.mirror_points(got[name], 48))
    np.testing.assert_allclose(mirrored[:, PERMUTATION][:, pairs],
                               np.asarray(got[name])[:, pairs], atol=1e-4)
  for name in ('scores', 'fine_scores'):
    np.testing.assert_allclose(np.asarray(got[name])[:, PERMUTATION],
                               got[name], atol=1e-6)
  # Without flip a random model is not symmetric: the test above is not
  # passing by accident.
  plain = jax.jit(functools.partial(model.apply, train=False))(
      {'params': params}, images)
  assert not np.allclose(
      inference.mirror_heatmaps(plain.coarse_heatmaps, 48, STRIDE,
                                PERMUTATION), plain.coarse_heatmaps, atol=1e-6)
