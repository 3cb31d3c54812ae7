"""Writes the synthetic people as a FLIC or MPII release, in the original formats.

  python -m launch.export_synthetic --format=flic --out=DIR   # DIR/FLIC/...
  python -m launch.export_synthetic --format=mpii --out=DIR \
      --image_size=256,256 --num_train=2000 --num_test=300

DIR is then the builder's manual directory: train with
  --config.data.manual_dir=DIR --config.data.data_dir=DIR/tfds
(MPII also --config.data.valid_split_file=DIR/valid_annolist.mat), and score
prediction files against DIR/FLIC/examples.mat or DIR/valid_annolist.mat.
Layouts, fields and classes: cascade_jax/data/export.py. Defaults: the FLIC
release's frame size (720x480), 2800 train / 400 test, 5% back-facing, 30%
of images with a second person.
"""

import time

from absl import app
from absl import flags

from cascade_jax.data import export
from launch import cli

_FORMAT = flags.DEFINE_enum('format', None, list(export.FORMATS),
                            'Release format to write.')
_OUT = flags.DEFINE_string('out', None, 'Output (manual) directory.')
_IMAGE_SIZE = flags.DEFINE_list('image_size', ['480', '720'],
                                'H,W of every image.')
_NUM_TRAIN = flags.DEFINE_integer('num_train', 2800, 'Training examples.')
_NUM_TEST = flags.DEFINE_integer('num_test', 400,
                                 'Test (FLIC) / validation (MPII) examples.')
_NUM_UNLABELLED = flags.DEFINE_integer(
    'num_unlabelled', 20, 'MPII only: test images without labels.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the synthetic data.')
_BACK_FACING = flags.DEFINE_float('back_facing_prob', 0.05,
                                  'Probability that a figure faces away.')
_DISTRACTOR_PROB = flags.DEFINE_float(
    'distractor_prob', 0.3, 'Probability that an image holds other people.')
_DISTRACTORS = flags.DEFINE_list(
    'distractor_range', ['1', '1'],
    'MIN,MAX other people in such an image (1 or 2).')
flags.mark_flags_as_required(['format', 'out'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  # A bad value raises ValueError naming it: cli.run prints it as one line.
  settings = export.ExportSettings(
      image_size=tuple(int(v) for v in _IMAGE_SIZE.value),
      num_train=_NUM_TRAIN.value, num_test=_NUM_TEST.value,
      num_unlabelled=_NUM_UNLABELLED.value if _FORMAT.value == 'mpii' else 0,
      seed=_SEED.value, back_facing_prob=_BACK_FACING.value,
      distractor_prob=_DISTRACTOR_PROB.value,
      distractor_range=tuple(int(v) for v in _DISTRACTORS.value))
  start = time.perf_counter()
  if _FORMAT.value == 'flic':
    paths = [export.export_flic(_OUT.value, settings)]
  else:
    paths = list(export.export_mpii(_OUT.value, settings))
  print(f'wrote {", ".join(paths)} and their images in '
        f'{time.perf_counter() - start:.0f} s')


if __name__ == '__main__':
  cli.run(main)
