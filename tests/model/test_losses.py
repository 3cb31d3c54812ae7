"""Tests for cascade_jax.model.losses."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from cascade_jax.model import losses


class HeatmapLossTest(chex.TestCase):

  def setUp(self):
    super().setUp()
    # B=2, H=W=2, J=2; target zero, so each joint's error is its sum of squares.
    predicted = np.zeros((2, 2, 2, 2), np.float32)
    predicted[0, 0, 0, 0] = 1.0  # example 0, joint 0: SSE 1
    predicted[0, :, :, 1] = 1.0  # example 0, joint 1: SSE 4
    predicted[1, 1, 1, 0] = 3.0  # example 1, joint 0: SSE 9
    predicted[1, :, :, 1] = 5.0  # example 1, joint 1: SSE 100 (unlabelled)
    self.predicted = jnp.asarray(predicted)
    self.target = jnp.zeros_like(self.predicted)
    self.weights = jnp.array([[1.0, 1.0], [1.0, 0.0]])

  def test_hand_computed(self):
    all_labelled = losses.heatmap_loss(self.predicted, self.target,
                                       jnp.ones((2, 2)))
    chex.assert_trees_all_close(all_labelled, (1.0 + 4.0 + 9.0 + 100.0) / 4)
    loss = losses.heatmap_loss(self.predicted, self.target, self.weights)
    chex.assert_shape(loss, ())
    chex.assert_trees_all_close(loss, (1.0 + 4.0 + 9.0) / 4)

  def test_squared_error_against_a_nonzero_target(self):
    target = jnp.full((1, 3, 1, 1), 0.5)
    predicted = jnp.array([0.0, 1.0, 2.5]).reshape(1, 3, 1, 1)
    loss = losses.heatmap_loss(predicted, target, jnp.ones((1, 1)))
    chex.assert_trees_all_close(loss, 0.25 + 0.25 + 4.0)

  def test_unlabelled_joints_do_not_contribute(self):
    loss_fn = lambda p: losses.heatmap_loss(p, self.target, self.weights)
    moved = self.predicted.at[1, :, :, 1].set(-7.0)
    chex.assert_trees_all_close(loss_fn(moved), loss_fn(self.predicted))
    grad = jax.grad(loss_fn)(self.predicted)
    chex.assert_trees_all_equal(grad[1, :, :, 1], jnp.zeros((2, 2)))
    self.assertTrue(np.any(np.asarray(grad[0]) != 0))

  def test_mean_of_equal_shards_equals_the_whole_batch(self):
    # What makes the pmap step independent of how the batch is sharded.
    whole = losses.heatmap_loss(self.predicted, self.target, self.weights)
    shards = [losses.heatmap_loss(self.predicted[i:i + 1], self.target[i:i + 1],
                                  self.weights[i:i + 1]) for i in range(2)]
    chex.assert_trees_all_close(whole, (shards[0] + shards[1]) / 2)

  def test_no_labelled_joint_gives_zero_and_a_finite_gradient(self):
    loss_fn = lambda p: losses.heatmap_loss(p, self.target, jnp.zeros((2, 2)))
    chex.assert_trees_all_close(loss_fn(self.predicted), 0.0)
    chex.assert_tree_all_finite(jax.grad(loss_fn)(self.predicted))
