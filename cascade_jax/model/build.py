"""Builds the model named by a config: one explicit place, found by grep."""

from __future__ import annotations

import flax.linen as nn
import ml_collections

from cascade_jax.model import coarse


def build_model(config: ml_collections.ConfigDict, num_joints: int) -> nn.Module:
  """The model of ``config`` (``config.model`` of an experiment)."""
  if config.name == 'coarse':
    return coarse.CoarseHeatmapModel(
        num_joints=num_joints,
        pooling=config.pooling,
        bank_widths=tuple(config.bank_widths),
        head_widths=tuple(config.head_widths),
        dropout_rate=config.dropout_rate)
  raise ValueError(f"model.name must be 'coarse', got {config.name!r}")
