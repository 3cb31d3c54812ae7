"""The synthetic people written in the real datasets' original file formats.

So that the real builders (`flic_pose`, `mpii_pose`), the MRF's torso inputs,
`launch.eval` and `launch.evaluate_predictions` can run end to end without the
real files. Each example is `synthetic_pose.render_example` of a
`SyntheticPoseConfig`, i.e. the same people as the synthetic builder's records
for the same seed, split and index; images are written as JPEG.

FLIC (`export_flic`), laid out as FLIC.zip unpacks, in ``out`` (use it as the
builder's manual_dir):
  out/FLIC/examples.mat   struct array 'examples' [1, N] with the release's
      fields and classes: poselet_hit_idx (uint16 [0, 1]: no poselet run),
      moviename (char), coords (double [2, 29], 1-based, NaN for the 18
      columns FLIC never fills and for joints outside the frame), filepath
      (char), imgdims (uint16 [H W 3]), currframe (uint16), torsobox (single
      [x1 y1 x2 y2], 1-based), istrain, istest (uint8);
  out/FLIC/images/<moviename>-<frame, 8 digits>.jpg.
  Train examples first (istrain), then test (istest).

MPII (`export_mpii`), laid out as the release:
  out/mpii_human_pose_v1_u12_1.mat   struct RELEASE with annolist, img_train,
      version, single_person, act, video_list. annolist(i): image.name,
      annorect (every person of the image: x1 y1 x2 y2 head box, annopoints.
      point (x, y, id, is_visible) for the joints inside the image, scale =
      height / 200, objpos (x, y)), frame_sec, vididx. Images of the 'train'
      and 'test' synthetic splits are training images (img_train 1); those of
      the 'unlabelled' split are test images (img_train 0) whose people have
      only scale and objpos, as the release's test set.
  out/images/<split>_<index, 6 digits>.jpg
  out/valid_annolist.mat   the validation split (the annotated figure of each
      'test' image) in the layout of Tompson et al.'s valid_annolist.mat:
      annolist (one annorect each), RELEASE_img_index, RELEASE_person_index
      (1-based). Build with data.valid_split_file=<this file>; score with
      `launch.evaluate_predictions --ground_truth=<this file>`.
  The annotated figure is annorect 1 of its image; the synthetic distractors
  follow. MPII head boxes do not exist for synthetic people: the box is the
  square centred between upper_neck and head_top whose side is their
  distance (`head_box`).

All coordinates are written 1-based (Matlab), as the releases.
"""

from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np
import scipy.io

from cascade_jax import joint_sets
from cascade_jax.data import synthetic_figures
from cascade_jax.data.flic import flic
from cascade_jax.data.mpii import mpii
from cascade_jax.data.synthetic_pose import synthetic_pose

JPEG_QUALITY = 92
FORMATS = ('flic', 'mpii')


@dataclasses.dataclass(frozen=True)
class ExportSettings:
  """What to render.

  Attributes:
    image_size: (H, W) of every image.
    num_train: training examples (FLIC istrain; MPII training images).
    num_test: test examples (FLIC istest; MPII validation persons).
    num_unlabelled: MPII only: test images without labels (img_train 0).
    seed: the synthetic dataset's seed.
    back_facing_prob: probability that a figure faces away.
    distractor_prob: probability that an image holds other people; their
      number is then drawn in distractor_range.
    distractor_range: (min, max) other people in such an image, inside [1, 2].
  """
  image_size: tuple[int, int] = (480, 720)
  num_train: int = 2800
  num_test: int = 400
  num_unlabelled: int = 0
  seed: int = 0
  back_facing_prob: float = 0.05
  distractor_prob: float = 0.3
  distractor_range: tuple[int, int] = (1, 1)

  def __post_init__(self):
    if len(self.image_size) != 2 or min(self.image_size) < 16:
      raise ValueError(f'image_size must be (H, W) >= 16, got '
                       f'{self.image_size}')
    for name in ('num_train', 'num_test', 'num_unlabelled'):
      if getattr(self, name) < 0:
        raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
    if self.num_test < 1:
      raise ValueError('num_test must be >= 1: the evaluation needs a test '
                       f'split, got {self.num_test}')
    if not 0.0 <= self.distractor_prob <= 1.0:
      raise ValueError(f'distractor_prob must be a probability, got '
                       f'{self.distractor_prob}')
    low, high = self.distractor_range
    if not 1 <= low <= high <= synthetic_pose.MAX_DISTRACTORS:
      raise ValueError(f'distractor_range must be (min, max) inside [1, '
                       f'{synthetic_pose.MAX_DISTRACTORS}], got '
                       f'{self.distractor_range}')


def example_config(settings: ExportSettings, joint_set: str, split: str,
                   index: int) -> synthetic_pose.SyntheticPoseConfig:
  """The synthetic config that renders example ``index`` of ``split``.

  Whether the image holds other people is drawn per example from its own
  generator (seed, split, index, 1), so the choice, like the image, does not
  depend on the order of generation.
  """
  split_id = synthetic_pose._SPLIT_IDS[split]  # pylint: disable=protected-access
  rng = np.random.default_rng([settings.seed, split_id, index, 1])
  crowded = rng.random() < settings.distractor_prob
  return synthetic_pose.SyntheticPoseConfig(
      joint_set=joint_set, image_size=tuple(settings.image_size),
      num_train=settings.num_train, num_test=settings.num_test,
      seed=settings.seed,
      difficulty=synthetic_figures.Difficulty(
          back_facing_prob=settings.back_facing_prob,
          num_distractors=(tuple(settings.distractor_range) if crowded
                           else (0, 0))))


def render(settings: ExportSettings, joint_set: str, split: str, index: int):
  """(scene, record) of example ``index`` of ``split``: the synthetic
  builder's record for `example_config` (no image) and its scene."""
  return synthetic_pose.render_example(
      example_config(settings, joint_set, split, index), split, index)


def encode_jpeg(image: np.ndarray) -> bytes:
  """JPEG bytes of an RGB uint8 image [H, W, 3]."""
  ok, data = cv2.imencode('.jpg', np.ascontiguousarray(image[..., ::-1]),
                          [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
  if not ok:
    raise ValueError(f'could not JPEG-encode an image of shape {image.shape}')
  return data.tobytes()


def struct_array(entries: list[dict], fields: tuple[str, ...]) -> np.ndarray:
  """A Matlab 1 x N struct array (scipy.io.savemat) with ``fields``; an
  entry's missing field is Matlab's []."""
  array = np.empty((1, len(entries)), dtype=[(f, object) for f in fields])
  for i, entry in enumerate(entries):
    for f in fields:
      array[0, i][f] = entry.get(f, np.zeros((0, 0)))
  return array


def _write_image(path: str, image: np.ndarray) -> None:
  with open(path, 'wb') as f:
    f.write(encode_jpeg(image))


def _check_out(out: str) -> None:
  if os.path.exists(out) and not os.path.isdir(out):
    raise ValueError(f'--out={out} exists and is not a directory')


# FLIC -----------------------------------------------------------------------

FLIC_MOVIE = 'synthetic-people'
_FLIC_FIELDS = ('poselet_hit_idx', 'moviename', 'coords', 'filepath',
                'imgdims', 'currframe', 'torsobox', 'istrain', 'istest')


def export_flic(out: os.PathLike | str, settings: ExportSettings,
                log=print) -> str:
  """Writes out/FLIC/{examples.mat, images/}; returns examples.mat's path."""
  out = os.fspath(out)
  _check_out(out)
  image_dir = os.path.join(out, 'FLIC', 'images')
  os.makedirs(image_dir, exist_ok=True)
  height, width = settings.image_size
  entries = []
  for split, count in (('train', settings.num_train),
                       ('test', settings.num_test)):
    for index in range(count):
      scene, record = render(settings, 'flic', split, index)
      frame = len(entries) + 1
      name = f'{FLIC_MOVIE}-{frame:08d}.jpg'
      _write_image(os.path.join(image_dir, name), scene.image)
      entries.append(flic_entry(record, name, frame, (height, width),
                                split == 'train'))
      if frame % 500 == 0:
        log(f'FLIC export: {frame} of '
            f'{settings.num_train + settings.num_test} images')
  path = os.path.join(out, 'FLIC', 'examples.mat')
  scipy.io.savemat(path, {'examples': struct_array(entries, _FLIC_FIELDS)},
                   do_compression=True)
  return path


def flic_entry(record: dict, name: str, frame: int,
               image_size: tuple[int, int], is_train: bool) -> dict:
  """The examples.mat fields of one synthetic record (FLIC joint order)."""
  coords = np.full((2, flic.NUM_COORDS), np.nan)
  joints = np.where(record['visible'][:, None],
                    record['joints'].astype(np.float64) + 1.0, np.nan)
  coords[:, flic.COORD_COLUMNS] = joints.T
  height, width = image_size
  return {
      'poselet_hit_idx': np.zeros((0, 1), np.uint16),
      'moviename': FLIC_MOVIE,
      'coords': coords,
      'filepath': name,
      'imgdims': np.array([[height, width, 3]], np.uint16),
      'currframe': np.array([[frame]], np.uint16),
      'torsobox': (record['torso_box'][None].astype(np.float64)
                   + 1.0).astype(np.float32),
      'istrain': np.array([[int(is_train)]], np.uint8),
      'istest': np.array([[int(not is_train)]], np.uint8),
  }


# MPII -----------------------------------------------------------------------

VALID_SPLIT_FILE = 'valid_annolist.mat'
_RECT_FIELDS = ('x1', 'y1', 'x2', 'y2', 'annopoints', 'scale', 'objpos')
_VALID_RECT_FIELDS = _RECT_FIELDS
_ANNOLIST_FIELDS = ('image', 'annorect', 'frame_sec', 'vididx')


def head_box(joints: np.ndarray) -> np.ndarray:
  """[4] (x1, y1, x2, y2), 0-based, of an MPII-order figure [16, 2]: the
  square centred between upper_neck and head_top, side their distance."""
  neck = joints[joint_sets.MPII.index('upper_neck')]
  top = joints[joint_sets.MPII.index('head_top')]
  centre, half = 0.5 * (neck + top), 0.5 * np.linalg.norm(top - neck)
  return np.concatenate([centre - half, centre + half])


def _figure_person(figure: synthetic_figures.Figure,
                   image_size: tuple[int, int], labelled: bool) -> dict:
  """One annorect (1-based) of a rendered figure."""
  joints = figure.joints_for(joint_sets.MPII).astype(np.float64)
  framed = figure.framed_joints(upper_body=False)
  centre = 0.5 * (framed.min(0) + framed.max(0))
  rect = {
      'scale': np.array([[figure.height / mpii.SCALE_UNIT]]),
      'objpos': struct_array([{'x': np.array([[centre[0] + 1.0]]),
                               'y': np.array([[centre[1] + 1.0]])}],
                             ('x', 'y')),
  }
  if not labelled:
    return rect
  box = head_box(joints) + 1.0
  for k, name in enumerate(('x1', 'y1', 'x2', 'y2')):
    rect[name] = np.array([[box[k]]])
  inside = synthetic_figures.visible_in(joints, image_size)
  points = [{'x': np.array([[joints[j, 0] + 1.0]]),
             'y': np.array([[joints[j, 1] + 1.0]]),
             'id': np.array([[j]], np.uint8),
             'is_visible': np.array([[1]], np.uint8)}
            for j in range(len(joints)) if inside[j]]
  if points:
    rect['annopoints'] = struct_array(
        [{'point': struct_array(points, ('x', 'y', 'id', 'is_visible'))}],
        ('point',))
  return rect


def export_mpii(out: os.PathLike | str, settings: ExportSettings,
                log=print) -> tuple[str, str]:
  """Writes the RELEASE .mat, images/ and valid_annolist.mat into ``out``;
  returns the paths of the two .mat files."""
  out = os.fspath(out)
  _check_out(out)
  image_dir = os.path.join(out, mpii.IMAGE_FOLDER)
  os.makedirs(image_dir, exist_ok=True)
  size = tuple(settings.image_size)
  annolist, img_train, single = [], [], []
  valid_rects, valid_images = [], []
  splits = (('train', settings.num_train), ('test', settings.num_test),
            ('unlabelled', settings.num_unlabelled))
  for split, count in splits:
    for index in range(count):
      scene, _ = render(settings, 'mpii', split, index)
      name = f'{split}_{index:06d}.jpg'
      _write_image(os.path.join(image_dir, name), scene.image)
      labelled = split != 'unlabelled'
      rects = [_figure_person(figure, size, labelled)
               for figure in (scene.figure,) + scene.distractors]
      annolist.append({
          'image': struct_array([{'name': name}], ('name',)),
          'annorect': struct_array(rects, _RECT_FIELDS),
      })
      img_train.append(int(labelled))
      single.append(np.array([[1]], np.uint8) if len(rects) == 1
                    else np.zeros((0, 0)))
      if split == 'test':
        valid_images.append(len(annolist))
        valid_rects.append({'annorect': struct_array([rects[0]],
                                                     _VALID_RECT_FIELDS)})
      if len(annolist) % 500 == 0:
        log(f'MPII export: {len(annolist)} of '
            f'{sum(c for _, c in splits)} images')
  num_images = len(annolist)
  release = {
      'annolist': struct_array(annolist, _ANNOLIST_FIELDS),
      'img_train': np.array([img_train], np.uint8),
      'version': '12',
      'single_person': _cell_column(single),
      'act': struct_array([{'cat_name': np.zeros((0, 0)),
                            'act_name': np.zeros((0, 0)),
                            'act_id': np.array([[-1]], np.int16)}] * num_images,
                          ('cat_name', 'act_name', 'act_id')).T,
      'video_list': np.zeros((1, 0), object),
  }
  release_path = os.path.join(out, mpii.ANNOTATION_FILE)
  scipy.io.savemat(release_path, {'RELEASE': struct_array(
      [release], tuple(release))}, do_compression=True)
  valid_path = os.path.join(out, VALID_SPLIT_FILE)
  scipy.io.savemat(valid_path, {
      'type': 'validation',
      'annolist': struct_array(valid_rects, ('annorect',)),
      'RELEASE_img_index': np.array(
          [valid_images], np.uint16 if num_images < 2**16 else np.uint32),
      'RELEASE_person_index': np.ones((1, len(valid_images)), np.uint8),
  }, do_compression=True)
  return release_path, valid_path


def _cell_column(values: list) -> np.ndarray:
  cell = np.empty((len(values), 1), object)
  for i, value in enumerate(values):
    cell[i, 0] = value
  return cell
