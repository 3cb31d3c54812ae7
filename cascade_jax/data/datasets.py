"""Opens a dataset split named by the config: one explicit place, found by grep.

Returns a random-access TFDS data source (array_record, no TensorFlow) and the
dataset's joint set. The built-in synthetic dataset is generated on first use;
real datasets (FLIC, MPII, LSP) arrive with their builders.
"""

from __future__ import annotations

import ml_collections

from cascade_jax import joint_sets

KNOWN_DATASETS = ('synthetic_pose',)


def load_split(config: ml_collections.ConfigDict, split: str):
  """(data source, JointSet) for ``split`` of the dataset of ``config.data``."""
  if config.name == 'synthetic_pose':
    # Imported here so that TFDS loads only when a dataset is opened.
    from cascade_jax.data.synthetic_pose import synthetic_pose  # pylint: disable=g-import-not-at-top
    builder = synthetic_pose.SyntheticPose(
        config=synthetic_pose.SyntheticPoseConfig(
            joint_set=config.builder_config,
            image_size=tuple(config.image_size),
            num_train=config.num_train,
            num_test=config.num_test,
            seed=config.dataset_seed),
        data_dir=config.data_dir)
    builder.download_and_prepare()
    return builder.as_data_source(split), joint_sets.get(config.builder_config)
  raise ValueError(f'data.name={config.name!r} is not a known dataset; '
                   f'known: {KNOWN_DATASETS}')
