"""Builds the model named by a config: one explicit place, found by grep.

  'coarse':           the coarse heat-map model alone (paper Sec. 3);
  'cascade':          coarse + crop of its features + Siamese fine model (Sec. 4),
                      optionally with the MRF spatial model (Sec. 3.3);
  'standard_cascade': coarse + a fine model on crops of the image (Fig. 13).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from cascade_jax.model import cascade
from cascade_jax.model import coarse
from cascade_jax.model import spatial
from cascade_jax.model import standard_cascade

MODEL_NAMES = ('coarse', 'cascade', 'standard_cascade')
COMPUTE_DTYPES = ('float32', 'bfloat16')


def compute_dtype(config: ml_collections.ConfigDict) -> jnp.dtype:
  """The ConvNets' computation dtype, ``config.compute_dtype`` of
  ``config.model`` (float32 for configs saved before the field).

  bfloat16 is mixed precision for GPU / TPU: bf16 activations and convs,
  float32 parameters, gradients, optimiser state, heat-maps and losses. It
  needs no loss scaling: bf16 has float32's exponent range.
  """
  name = config.get('compute_dtype', 'float32')
  if name not in COMPUTE_DTYPES:
    raise ValueError(f'model.compute_dtype must be one of {COMPUTE_DTYPES}, '
                     f'got {name!r}')
  return jnp.dtype(name)


def build_model(config: ml_collections.ConfigDict, num_joints: int,
                spatial_model: spatial.SpatialModel | None = None) -> nn.Module:
  """The model of ``config`` (``config.model`` of an experiment); a cascade
  gets ``spatial_model`` (`spatial.build` of the experiment config)."""
  coarse_fields = dict(num_joints=num_joints, pooling=config.pooling,
                       bank_widths=tuple(config.bank_widths),
                       head_widths=tuple(config.head_widths),
                       dropout_rate=config.dropout_rate,
                       dtype=compute_dtype(config))
  if config.name == 'coarse':
    return coarse.CoarseHeatmapModel(**coarse_fields)
  fine_fields = dict(fine_bank_widths=tuple(config.fine_bank_widths),
                     fine_hidden_width=config.fine_hidden_width,
                     context=config.context,
                     fine_heatmap_input=config.get('fine_heatmap_input', False),
                     fine_other_joints_input=config.get(
                         'fine_other_joints_input', False))
  if config.name == 'cascade':
    return cascade.CascadeModel(**coarse_fields, **fine_fields,
                                spatial=spatial_model)
  if config.name == 'standard_cascade':
    hint_channels = cascade.hint_channels(
        fine_fields['fine_heatmap_input'],
        fine_fields['fine_other_joints_input'])
    extra_width = config.extra_width or standard_cascade.matched_extra_width(
        num_joints, tuple(config.bank_widths[:2]), 3,
        tuple(config.fine_bank_widths), config.fine_hidden_width,
        config.context, hint_channels)
    return standard_cascade.StandardCascadeModel(
        **coarse_fields, **fine_fields, extra_width=extra_width)
  raise ValueError(f'model.name must be one of {MODEL_NAMES}, got '
                   f'{config.name!r}')


def is_cascade(model: nn.Module) -> bool:
  """Whether ``model`` has a fine part (returns ``CascadeOutputs``)."""
  return not isinstance(model, coarse.CoarseHeatmapModel)
