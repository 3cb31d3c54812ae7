"""Computes the spatial model's initial kernels from a config's training split.

  python -m launch.spatial_kernels --config=configs/flic_8x.py

Histograms of relative joint offsets (and of each joint's offset from the
torso) in the evaluation crop, at heat-map resolution; written to
``config.model.spatial.kernel_file``, which training and evaluation read.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from cascade_jax.model import spatial
from cascade_jax.model import spatial_kernels
from launch import cli
from launch import config_overrides

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (configs/*.py) with '
    'model.spatial.', lock_config=True)
flags.mark_flags_as_required(['config'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  if 'spatial' not in config.model:
    raise app.UsageError('the config has no model.spatial section '
                         '(spatial.default_config)')
  kernels, graph, count = spatial_kernels.from_training_split(config)
  path = config.model.spatial.kernel_file
  spatial_kernels.save(path, kernels, graph, config.model.pooling, count)
  print(f'wrote {len(graph)} kernels of {kernels.shape[1]} x '
        f'{kernels.shape[2]} cells from {count} training examples to {path}')


if __name__ == '__main__':
  cli.run(main, flags_parser=config_overrides.parse_flags)
