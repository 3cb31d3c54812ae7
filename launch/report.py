"""Writes a run's HTML report: python -m launch.report --workdir=DIR

Training curves, PCK curves, per-joint tables in the paper's layouts, x-error
histograms, best and worst examples and per-joint heat-maps, into
DIR/report/index.html (with its PNG figures beside it). Evaluates the
checkpoint first when DIR/eval holds no predictions. --flip reports the flip
test's evaluation (DIR/eval_flip, as `launch.eval --flip` writes it).
"""

from absl import app
from absl import flags

from cascade_jax.eval import report
from cascade_jax.train import progress

from launch import cli

_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Training directory holding checkpoints/.')
_EXAMPLES = flags.DEFINE_integer(
    'examples', 4, 'How many best and how many worst examples to show.')
_HEATMAPS = flags.DEFINE_integer(
    'heatmaps', 3, 'How many examples get per-joint heat-map panels.')
_FLIP = flags.DEFINE_bool(
    'flip', False, "Report the flip test's evaluation (WORKDIR/eval_flip/, "
    'evaluated first when missing) instead of the plain one.')
flags.mark_flags_as_required(['workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  progress.quiet_library_logs()
  path = report.write_report(_WORKDIR.value, _EXAMPLES.value, _HEATMAPS.value,
                             _FLIP.value)
  print(f'report: {path}')


if __name__ == '__main__':
  cli.run(main)
