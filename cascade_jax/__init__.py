"""cascade_jax: Tompson et al. (CVPR 2015) in JAX/Flax.

`cascade_jax.Predictor` runs a trained checkpoint on images
(cascade_jax/predictor.py); everything else lives in the sub-packages.
"""

__all__ = ['Predictor']


def __getattr__(name):
  # Imported on first use (PEP 562): `import cascade_jax.joint_sets` and the
  # grain worker processes stay free of JAX, Orbax and OpenCV start-up.
  if name == 'Predictor':
    from cascade_jax.predictor import Predictor  # pylint: disable=g-import-not-at-top
    return Predictor
  raise AttributeError(f'module cascade_jax has no attribute {name!r}')
