"""Predicts joints on images with a trained checkpoint.

  python -m launch.predict --workdir=DIR --images=PATH|GLOB|DIR --out=DIR \
      [--torso=X,Y] [--bbox=X1,Y1,X2,Y2] [--scales=0.7,1,1.4] [--flip] \
      [--min_score=0.3]

Writes <image name>.json (joints in original-image pixels, a score per
joint: the peak of its heat-map, near 1 = confident) and
<image name>_overlay.png (the skeleton) per image into --out. Without
--torso / --bbox the person is assumed to fill the image
(cascade_jax/predictor.py states the crop rule). Several --scales search
over person sizes for images whose scale is unknown; --flip averages each
heat-map with its mirror image's; --min_score leaves the joints below it out
of the overlay (the JSON marks them "shown": false). It warns when the
checkpoint was trained on synthetic figures, and when most scores are low.
"""

import json
import sys

from absl import app
from absl import flags

from cascade_jax import predictor as predictor_lib
from cascade_jax.train import progress
from launch import cli

_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Training directory holding checkpoints/.')
_IMAGES = flags.DEFINE_string(
    'images', None, 'An image file, a folder of images or a glob pattern '
    '(quote it).')
_OUT = flags.DEFINE_string('out', None, 'Folder for the JSON and PNG files.')
_TORSO = flags.DEFINE_list(
    'torso', None, 'X,Y torso position in image pixels: centres the crop.')
_BBOX = flags.DEFINE_list(
    'bbox', None, 'X1,Y1,X2,Y2 person box in image pixels.')
_SCALES = flags.DEFINE_list(
    'scales', ['1'], 'Person-size multipliers to search, e.g. 0.7,1,1.4 '
    '(the joint is taken from the scale where its heat-map peaks highest).')
_FLIP = flags.DEFINE_bool(
    'flip', False, 'Flip test: average each heat-map with the mirror '
    'image\'s (left and right joints swapped); 2 (coarse) or 4 (cascade) '
    'forward passes per image instead of 1.')
_MIN_SCORE = flags.DEFINE_float(
    'min_score', None, 'Leave joints scoring below this (heat-map peak, 0-1) '
    'out of the overlay; the JSON marks them "shown": false.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 16, 'Images per batch.')
flags.mark_flags_as_required(['workdir', 'images', 'out'])


def _numbers(flag, count):
  """The float values of a list flag of ``count`` numbers, or None."""
  if flag.value is None:
    return None
  try:
    values = [float(v) for v in flag.value]
  except ValueError:
    raise app.UsageError(f'--{flag.name} must be numbers, got '
                         f'{",".join(flag.value)}') from None
  if len(values) != count:
    raise app.UsageError(f'--{flag.name} needs {count} comma-separated '
                         f'numbers, got {",".join(flag.value)}')
  return values


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  progress.quiet_library_logs()
  torso, bbox = _numbers(_TORSO, 2), _numbers(_BBOX, 4)
  scales = _numbers(_SCALES, len(_SCALES.value))
  paths = predictor_lib.resolve_images(_IMAGES.value)
  predictor = predictor_lib.Predictor.from_checkpoint(_WORKDIR.value,
                                                      _BATCH_SIZE.value)
  print(f'{len(paths)} images, checkpoint step {predictor.step}, '
        f'{predictor.joint_set.num_joints} {predictor.joint_set.name} '
        f'joints{", flip test" if _FLIP.value else ""}')
  warning = predictor_lib.checkpoint_warning(predictor.config)
  if warning:
    sys.stderr.write(f'warning: {warning}\n')
  written = predictor_lib.predict_files(
      predictor, paths, _OUT.value, torso, bbox, scales, _BATCH_SIZE.value,
      _FLIP.value, _MIN_SCORE.value)
  results = []
  for path in written:
    with open(path) as f:
      results.append(json.load(f))
  warning = predictor_lib.score_warning(
      results, cropped=torso is not None or bbox is not None)
  if warning:
    sys.stderr.write(f'warning: {warning}\n')
  print(f'wrote {len(written)} JSON files and overlays to {_OUT.value}')


if __name__ == '__main__':
  cli.run(main)
