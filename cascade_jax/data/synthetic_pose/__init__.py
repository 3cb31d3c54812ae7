"""TFDS builder of the built-in synthetic pose dataset (synthetic_pose.py)."""

from cascade_jax.data.synthetic_pose.synthetic_pose import config_name
from cascade_jax.data.synthetic_pose.synthetic_pose import SyntheticPose
from cascade_jax.data.synthetic_pose.synthetic_pose import SyntheticPoseConfig
