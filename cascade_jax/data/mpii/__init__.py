"""TFDS builder of MPII Human Pose (mpii.py) and its validation split (valid_split.py)."""

from cascade_jax.data.mpii.mpii import build
from cascade_jax.data.mpii.mpii import MpiiPose
from cascade_jax.data.mpii.mpii import parse_annolist
from cascade_jax.data.mpii.mpii import read_release
