"""The precision study: python -m launch.precision_study --config=CONFIG --workdir=DIR

Trains the 4x / 8x / 16x cascades, the standard cascade and the cascade
without SpatialDropout (one resumable workdir each under --workdir), then
writes DIR/precision_study.md with its PNG figures (paper Sec. 5, Table 1,
Figs. 11, 12, 14). --flip predicts with the flip test and writes its report
to DIR/flip/, reusing the trained variants. Config overrides apply to every
variant, e.g. --config.train.stage_steps.coarse=3000 for a shorter study.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from cascade_jax.eval import precision
from cascade_jax.train import progress
from launch import cli
from launch import config_overrides

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (configs/*.py).', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Directory for the variants and the report.')
_VARIANTS = flags.DEFINE_list('variants', list(precision.VARIANTS),
                              'Variants to run: ' +
                              ', '.join(precision.VARIANTS))
_FLIP = flags.DEFINE_bool(
    'flip', False, 'Predict with the flip test (each image and its mirror); '
    'the report goes to WORKDIR/flip/. Trained variants are reused.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  progress.quiet_library_logs()
  report = precision.run_study(_CONFIG.value, _WORKDIR.value, _VARIANTS.value,
                                _FLIP.value)
  print(f'wrote {report}')


if __name__ == '__main__':
  cli.run(main, flags_parser=config_overrides.parse_flags)
