"""Tests for cascade_jax.model.coarse."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cascade_jax.model import coarse

NARROW = dict(bank_widths=(2, 3, 4, 5), head_widths=(6, 7))


def _init(model, images):
  init = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))
  return init(images)


class CoarseHeatmapModelTest(chex.TestCase):

  def test_output_and_feature_shapes_for_every_pooling_factor(self):
    images = jax.random.uniform(jax.random.key(1), (2, 64, 128, 3))
    for pooling in (4, 8, 16):
      with self.subTest(pooling=pooling):
        model = coarse.CoarseHeatmapModel(num_joints=3, pooling=pooling,
                                          **NARROW)
        heatmaps, features = model.apply(
            _init(model, images), images, train=True, return_features=True,
            rngs={'dropout': jax.random.key(2)})
        chex.assert_shape(heatmaps, (2, 64 // pooling, 128 // pooling, 3))
        # (conv1, conv2) per bank.
        chex.assert_shape(jax.tree.leaves(features), [
            (2, 64, 128, 2), (2, 32, 64, 3),
            (2, 32, 64, 2), (2, 16, 32, 3),
            (2, 16, 32, 2), (2, 8, 16, 3),
        ])
        # Post-ReLU features.
        self.assertGreaterEqual(float(min(jnp.min(f) for f in
                                          jax.tree.leaves(features))), 0.0)

  def test_size_not_a_multiple_of_4s_pools_lower_banks_in_ceil_mode(self):
    # 48 x 80 at 16x: bank 2 sees 12 x 20 -> 1 x 2 cells, upsampled to
    # 4 x 8 and cropped to bank 0's 3 x 5.
    images = jax.random.uniform(jax.random.key(1), (1, 48, 80, 3))
    model = coarse.CoarseHeatmapModel(num_joints=3, pooling=16, **NARROW)
    heatmaps, features = model.apply(_init(model, images), images, train=False,
                                     return_features=True)
    chex.assert_shape(heatmaps, (1, 3, 5, 3))
    chex.assert_shape(list(features[2]), [(1, 12, 20, 2), (1, 6, 10, 3)])
    chex.assert_tree_all_finite(heatmaps)

  def test_features_flag_does_not_change_the_heatmaps(self):
    images = jax.random.uniform(jax.random.key(1), (1, 32, 64, 3))
    model = coarse.CoarseHeatmapModel(num_joints=3, **NARROW)
    variables = _init(model, images)
    heatmaps = model.apply(variables, images, train=False)
    with_features, _ = model.apply(variables, images, train=False,
                                   return_features=True)
    chex.assert_trees_all_equal(with_features, heatmaps)

  def test_parameter_count(self):
    model = coarse.CoarseHeatmapModel(num_joints=3, **NARROW)
    params = _init(model, jnp.zeros((1, 32, 32, 3)))['params']
    # Per bank, kernel + bias: conv5x5 3->2, conv5x5 2->3, conv5x5 3->4,
    # conv9x9 4->5; head: 1x1 5->6, 6->7, 7->3.
    bank = ((25 * 3 * 2 + 2) + (25 * 2 * 3 + 3) + (25 * 3 * 4 + 4)
            + (81 * 4 * 5 + 5))
    head = (5 * 6 + 6) + (6 * 7 + 7) + (7 * 3 + 3)
    self.assertEqual(bank, 2234)
    self.assertEqual(sum(p.size for p in jax.tree.leaves(params)),
                     3 * bank + head)

  def test_bad_input_size_raises_a_clear_error(self):
    model = coarse.CoarseHeatmapModel(num_joints=3, pooling=8, **NARROW)
    with pytest.raises(ValueError,
                       match=r'100 x 64.*multiples of 8.*pooling=8.*96 x 64'):
      _init(model, jnp.zeros((1, 100, 64, 3)))

  def test_bad_pooling_raises(self):
    model = coarse.CoarseHeatmapModel(num_joints=3, pooling=2, **NARROW)
    with pytest.raises(ValueError,
                       match=r'pooling must be one of \(4, 8, 16\), got 2'):
      _init(model, jnp.zeros((1, 64, 64, 3)))

  def test_invariant_to_brightness_and_contrast(self):
    images = jax.random.uniform(jax.random.key(1), (2, 64, 64, 3))
    model = coarse.CoarseHeatmapModel(num_joints=3, **NARROW)
    variables = _init(model, images)
    heatmaps = model.apply(variables, images, train=False)
    changed = model.apply(variables, 0.5 * images + 0.2, train=False)
    chex.assert_trees_all_close(changed, heatmaps, atol=1e-4)

  def test_dropout_only_in_training(self):
    images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
    model = coarse.CoarseHeatmapModel(num_joints=3, **NARROW)
    variables = _init(model, images)

    @jax.jit
    def train_apply(key):
      return model.apply(variables, images, train=True, rngs={'dropout': key})

    eval_apply = jax.jit(lambda: model.apply(variables, images, train=False))
    self.assertFalse(np.allclose(train_apply(jax.random.key(0)),
                                 train_apply(jax.random.key(1))))
    # Evaluation needs no rng and is deterministic.
    chex.assert_trees_all_equal(eval_apply(), eval_apply())

  def test_paper_size_flic_forward(self):
    # About 3 s on 2 CPU cores, so not marked slow.
    model = coarse.CoarseHeatmapModel(
        num_joints=11, pooling=8, bank_widths=(128, 128, 128, 512),
        head_widths=(256, 256))
    images = jax.random.uniform(jax.random.key(1), (1, 240, 320, 3))
    variables = _init(model, images)
    heatmaps = jax.jit(lambda v, x: model.apply(v, x, train=False))(
        variables, images)
    chex.assert_shape(heatmaps, (1, 30, 40, 11))
    chex.assert_tree_all_finite(heatmaps)
