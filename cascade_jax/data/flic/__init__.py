"""TFDS builder of FLIC and FLIC-plus (flic.py)."""

from cascade_jax.data.flic.flic import build
from cascade_jax.data.flic.flic import FlicConfig
from cascade_jax.data.flic.flic import FlicPose
from cascade_jax.data.flic.flic import read_examples
