"""TFDS features shared by the pose builders: the fields the input pipeline reads.

Every builder's records carry 'image', 'joints' [J, 2] float32 (x, y, 0-based)
and 'visible' [J] bool, plus fields of its own (crop centre, person scale,
dataset-specific labels).
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds


def pose_features(num_joints: int, image_shape=(None, None, 3),
                  image_format: str = 'jpeg',
                  **extra: tfds.features.FeatureConnector
                  ) -> tfds.features.FeaturesDict:
  """The common pose fields plus ``extra`` builder-specific ones."""
  return tfds.features.FeaturesDict({
      'image': tfds.features.Image(shape=image_shape,
                                   encoding_format=image_format),
      'joints': tfds.features.Tensor(shape=(num_joints, 2), dtype=np.float32),
      'visible': tfds.features.Tensor(shape=(num_joints,), dtype=np.bool_),
      **extra,
  })
