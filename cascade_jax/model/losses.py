"""Heat-map regression losses (paper eq. 1)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def heatmap_loss(predicted: jax.Array, target: jax.Array,
                 weights: jax.Array) -> jax.Array:
  """E1: per-joint sum of squared errors, averaged over joints and examples.

    E1 = 1 / (B * J) * sum_{b, j} w[b, j] * sum_{x, y} (P - T)[b, y, x, j]**2

  Paper eq. 1 averaged over the batch. Unlabelled joints (weight 0) add no
  error but still count in B * J, as an unlabelled joint with a perfect
  prediction would: the normaliser is then the same for every batch of a
  given shape, so the mean over N equal device shards (lax.pmean) equals the
  loss of the whole batch, and the pmap step does not depend on the sharding.

  Args:
    predicted: [B, H, W, J] heat-maps.
    target: [B, H, W, J] Gaussian targets.
    weights: [B, J] non-negative, usually 1 (labelled) or 0 (unlabelled).

  Returns:
    scalar float32.
  """
  squared_error = jnp.sum(jnp.square(predicted - target), axis=(1, 2))  # [B, J]
  return jnp.mean(weights * squared_error)
