"""TFDS features shared by the pose builders: the fields the input pipeline reads.

Every builder's records carry 'image', 'joints' [J, 2] float32 (x, y, 0-based)
and 'visible' [J] bool, plus fields of its own (crop centre, person scale,
dataset-specific labels). ``dataset_info`` is the builders' DatasetInfo.
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


def dataset_info(builder: tfds.core.DatasetBuilder,
                 **kwargs) -> tfds.core.DatasetInfo:
  """``builder.dataset_info_from_configs(**kwargs)`` for a dataset that only
  this machine has.

  Making a builder of a dataset not prepared yet, TFDS looks for its
  precomputed DatasetInfo on the TFDS bucket, and tensorflow-datasets 4.9.10
  makes a temporary directory for the files before it looks and never
  removes it: one empty /tmp/tmp*tfds per builder (about 140 per test run).
  These datasets are never on the bucket, so the lookup is switched off.
  """
  info = builder.dataset_info_from_configs(**kwargs)
  info.initialize_from_bucket = lambda: None
  return info
