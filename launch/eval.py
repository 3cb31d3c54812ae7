"""Evaluates a checkpoint: python -m launch.eval --config=CONFIG --workdir=DIR

Restores the latest Orbax checkpoint of --workdir, predicts the evaluation
split, prints the dataset's official table first (FLIC PCK@0.05 as paper
Table 3, MPII PCKh@0.5 as Table 4 under both head conventions, LSP PCK@0.2),
then torso-normalised PCK (the only table for synthetic data), and writes
results JSON and PCK curve PNGs. --flip evaluates with the flip test
(every heat-map averaged with its mirror image's, left and right swapped)
and writes to --workdir/eval_flip/ instead of eval/.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from cascade_jax.eval import evaluate
from cascade_jax.train import progress
from launch import cli
from launch import config_overrides

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (configs/*.py).', lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Training directory holding checkpoints/.')
_FLIP = flags.DEFINE_bool(
    'flip', False, 'Flip test: average the heat-maps of each image and its '
    'mirror (joints swapped left/right); results in WORKDIR/eval_flip/.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  progress.quiet_library_logs()
  evaluate.evaluate_checkpoint(_CONFIG.value, _WORKDIR.value, _FLIP.value)


if __name__ == '__main__':
  cli.run(main, flags_parser=config_overrides.parse_flags)
