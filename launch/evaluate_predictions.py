"""Scores any method's predictions with the datasets' official conventions.

  python -m launch.evaluate_predictions --dataset=mpii \
      --ground_truth=gt_valid.mat --predictions=pred.mat [--index_base=1]

Prints the table (paper Table 3 / 4 layout; MPII under the official Matlab
and the HRNet conventions) and writes JSON, by default next to the
predictions as <predictions>.scores.json. --index_base says whether the
predictions' pixels are 0-based or 1-based (Matlab) when the file does not
declare it; the files cascade_jax writes declare it.
"""

import json

from absl import app
from absl import flags

from cascade_jax.eval import official
from cascade_jax.eval import prediction_files

from launch import cli

_DATASET = flags.DEFINE_enum('dataset', None, ['flic', 'mpii', 'lsp'],
                             'Dataset whose official scoring to use.')
_GROUND_TRUTH = flags.DEFINE_string(
    'ground_truth', None, 'FLIC examples.mat, LSP joints.mat, MPII\'s '
    'mpii_human_pose_v1_u12_1.mat or valid_annolist.mat (its own '
    'coordinates), or a gt_valid.mat-style file (pos_gt_src, headboxes_src, '
    'jnt_missing).')
_PREDICTIONS = flags.DEFINE_string(
    'predictions', None, '.mat / .npy / .json / .h5 predictions in the '
    "dataset's joint order (N x J x 2, J x 2 x N or 2 x J x N).")
_PREDICTIONS_KEY = flags.DEFINE_string(
    'predictions_key', None, 'Variable (.mat, .h5) or key (.json) to read; '
    'default: the only candidate.')
_PREDICTIONS_LAYOUT = flags.DEFINE_enum(
    'predictions_layout', None, sorted(prediction_files.LAYOUTS),
    'Force the array layout when its shape is ambiguous.')
_FLIC_SWAP = flags.DEFINE_enum(
    'flic_swap', official.FLIC_SWAP_MODEC, list(official.FLIC_SWAPS),
    'FLIC backward-facing ground-truth rule (see cascade_jax/eval/official.py).')
_INDEX_BASE = flags.DEFINE_enum(
    'index_base', None, ['0', '1'], 'Pixel convention of the predictions: '
    '0 (Python) or 1 (Matlab, e.g. pos_pred_src). Needed when the file does '
    'not declare it in an index_base variable or key.')
_OUTPUT = flags.DEFINE_string(
    'output', None, 'JSON output; default <predictions>.scores.json.')
flags.mark_flags_as_required(['dataset', 'ground_truth', 'predictions'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  report, data = official.evaluate_prediction_files(
      _DATASET.value, _GROUND_TRUTH.value, _PREDICTIONS.value,
      _PREDICTIONS_KEY.value, _PREDICTIONS_LAYOUT.value, _FLIC_SWAP.value,
      None if _INDEX_BASE.value is None else int(_INDEX_BASE.value))
  output = _OUTPUT.value or official.default_output_path(_PREDICTIONS.value)
  with open(output, 'w') as f:
    json.dump(data, f, indent=1)
  print(report)
  print(f'wrote {output}')


if __name__ == '__main__':
  cli.run(main)
