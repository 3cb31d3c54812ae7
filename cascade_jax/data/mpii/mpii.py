"""`mpii_pose`: MPII Human Pose (Andriluka et al., CVPR 2014), one example per person.

A TFDS builder (array_record, no TensorFlow) over the manually downloaded
files; see `MANUAL_DOWNLOAD_INSTRUCTIONS`. Splits:
  train       annotated persons of the training images, minus validation;
  validation  the 2958 persons of the standard split (Tompson et al.), in the
              order of valid_split.json (= gt_valid.mat, valid_images.txt);
              or, with ``valid_split_file`` (config data.valid_split_file),
              the persons that .mat lists (valid_annolist.mat's layout:
              RELEASE_img_index, RELEASE_person_index, 1-based), for files
              other than the real release (`launch.export_synthetic`);
  test        every person of the test images with objpos and scale
              (unlabelled: joints zero, visible False).

  builder = build('/data/manual', '/data/tfds')
  source = builder.as_data_source('validation')

Features, in image pixels (x, y), 0-based (the .mat is 1-based Matlab: 1 is
subtracted on load), pixel centres at integers:
  image [H, W, 3] uint8, the original JPEG (stored once per person);
  joints [16, 2] by official id (`joint_sets.MPII`), zero where unlabelled;
  visible [16] bool, labelled; occluded [16] bool, labelled with is_visible 0;
  head_box [4] (x1, y1, x2, y2), zero when absent; person_center [2], objpos;
  person_scale, 200 * scale: the person's height in pixels, which the
  scale-normalised crop keeps constant; distractor_joints [16, 16, 2],
  distractor_visible [16, 16] and num_distractors: the other annotated people
  of the image, nearest first (by objpos), zero rows past the count;
  image_name; annolist_index and annorect_index, 0-based (RELEASE_img_index
  and RELEASE_person_index minus 1).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np
import scipy.io
import tensorflow_datasets as tfds

from cascade_jax import joint_sets
from cascade_jax.data import features
from cascade_jax.data import manual_files
from cascade_jax.data.mpii import valid_split

ANNOTATION_FILE = 'mpii_human_pose_v1_u12_1.mat'
IMAGE_FOLDER = 'images'
MAX_DISTRACTORS = 16
NUM_JOINTS = joint_sets.MPII.num_joints
SCALE_UNIT = 200.0  # MPII's scale is the person height / 200 px.

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
From http://human-pose.mpi-inf.mpg.de/#download get the images
(mpii_human_pose_v1.tar.gz) and the annotations (mpii_human_pose_v1_u12_2.zip)
and unpack both into the manual directory, so that it holds
  <manual_dir>/{ANNOTATION_FILE}
  <manual_dir>/{IMAGE_FOLDER}/<annolist(i).image.name>   (24987 JPEGs)
The validation split ships with this package (valid_split.json).
"""

_ANNOTATION_WHAT = (f'the MPII annotation file {ANNOTATION_FILE} with the '
                    'struct RELEASE (fields annolist, img_train)')


@dataclasses.dataclass(frozen=True)
class MpiiPerson:
  """One annorect entry, coordinates 0-based.

  Attributes:
    joints: [16, 2] float32 by joint id, zero where unlabelled.
    visible: [16] bool, labelled.
    occluded: [16] bool, labelled and is_visible == 0.
    head_box: [4] float32 (x1, y1, x2, y2), zero when absent.
    center: [2] float32 objpos, or None when absent.
    scale: the scale field (person height / 200 px), or None when absent.
  """
  joints: np.ndarray
  visible: np.ndarray
  occluded: np.ndarray
  head_box: np.ndarray
  center: np.ndarray | None
  scale: float | None

  @property
  def annotated(self) -> bool:
    return bool(self.visible.any())

  @property
  def locatable(self) -> bool:
    """Has the objpos and scale that a person-centred crop needs."""
    return self.center is not None and self.scale is not None

  @property
  def has_head_box(self) -> bool:
    """Has the head box that PCKh's head size comes from."""
    return bool(self.head_box.any())


def parse_person(rect, path: str, where: str) -> MpiiPerson:
  """Parses an annorect struct; every optional field may be missing or []."""
  joints = np.zeros((NUM_JOINTS, 2), np.float32)
  visible = np.zeros(NUM_JOINTS, bool)
  occluded = np.zeros(NUM_JOINTS, bool)
  annopoints = manual_files.optional_field(rect, 'annopoints')
  points = ([] if manual_files.is_empty(annopoints) else manual_files.as_list(
      manual_files.field(annopoints, 'point', path, f'{where}.annopoints')))
  for k, point in enumerate(points):
    point_where = f'{where}.annopoints.point({k + 1})'
    joint = int(manual_files.scalar(
        manual_files.field(point, 'id', path, point_where), path,
        f'{point_where}.id'))
    if not 0 <= joint < NUM_JOINTS:
      raise manual_files.ManualFileError(
          f'{path}: {point_where}.id should be a joint id in [0, '
          f'{NUM_JOINTS - 1}], got {joint}')
    for axis, name in enumerate('xy'):
      joints[joint, axis] = manual_files.scalar(
          manual_files.field(point, name, path, point_where), path,
          f'{point_where}.{name}') - 1.0
    visible[joint] = True
    flag = manual_files.optional_field(point, 'is_visible')
    # is_visible is 0/1, '0'/'1' or empty (unknown: taken as not occluded).
    occluded[joint] = (not manual_files.is_empty(flag) and manual_files.scalar(
        flag, path, f'{point_where}.is_visible') == 0)
  head_box = np.zeros(4, np.float32)
  box_fields = ('x1', 'y1', 'x2', 'y2')
  present = [f for f in box_fields
             if not manual_files.is_empty(manual_files.optional_field(rect, f))]
  if present and len(present) < len(box_fields):
    missing = [f for f in box_fields if f not in present]
    raise manual_files.ManualFileError(
        f'{path}: {where} has the head box field(s) {present} but not '
        f'{missing}: expected all of {list(box_fields)} or none')
  if present:
    head_box = np.array([manual_files.scalar(getattr(rect, f), path,
                                             f'{where}.{f}') - 1.0
                         for f in box_fields], np.float32)
  center = None
  objpos = manual_files.optional_field(rect, 'objpos')
  if not manual_files.is_empty(objpos):
    center = np.array([manual_files.scalar(
        manual_files.field(objpos, f, path, f'{where}.objpos'), path,
        f'{where}.objpos.{f}') - 1.0 for f in ('x', 'y')], np.float32)
  scale = manual_files.optional_field(rect, 'scale')
  scale = (None if manual_files.is_empty(scale)
           else manual_files.scalar(scale, path, f'{where}.scale'))
  return MpiiPerson(joints, visible, occluded, head_box, center, scale)


def parse_annolist(annolist, path: str) -> list[list[MpiiPerson]]:
  """The persons of each annolist entry (an image); [] where it has none."""
  images = []
  for i, entry in enumerate(manual_files.as_list(annolist)):
    where = f'annolist({i + 1})'
    rects = manual_files.as_list(
        manual_files.optional_field(entry, 'annorect'))
    images.append([parse_person(rect, path, f'{where}.annorect({r + 1})')
                   for r, rect in enumerate(rects)])
  return images


@dataclasses.dataclass(frozen=True)
class MpiiRelease:
  """The parts of the RELEASE struct that the builder uses.

  Attributes:
    image_names: annolist(i).image.name for each image.
    is_train: [N] bool, img_train.
    persons: the persons of each image.
  """
  image_names: list[str]
  is_train: np.ndarray
  persons: list[list[MpiiPerson]]


def read_release(path: os.PathLike | str) -> MpiiRelease:
  """Parses mpii_human_pose_v1_u12_1.mat."""
  path = os.fspath(path)
  release = manual_files.load_mat(path, ('RELEASE',),
                                  _ANNOTATION_WHAT)['RELEASE']
  annolist = manual_files.field(release, 'annolist', path, 'RELEASE')
  is_train = np.asarray(manual_files.field(release, 'img_train', path,
                                           'RELEASE')).ravel().astype(bool)
  entries = manual_files.as_list(annolist)
  if len(entries) != len(is_train):
    raise manual_files.ManualFileError(
        f'{path}: RELEASE.img_train should have one entry per annolist image '
        f'({len(entries)}), got {len(is_train)}')
  names = []
  for i, entry in enumerate(entries):
    name = manual_files.field(manual_files.field(
        entry, 'image', path, f'annolist({i + 1})'), 'name', path,
                              f'annolist({i + 1}).image')
    if not isinstance(name, str) or not name:
      raise manual_files.ManualFileError(
          f'{path}: annolist({i + 1}).image.name should be a file name, got '
          f'{name!r}')
    names.append(name)
  return MpiiRelease(names, is_train, parse_annolist(annolist, path))


def split_persons(release: MpiiRelease, path: str,
                  valid_split_file: str = '') -> dict[str, list]:
  """{split: [(image index, person index), ...]}, all 0-based; validation
  from ``valid_split_file`` ('' = the standard split, valid_split.json)."""
  if valid_split_file:
    split_name = valid_split_file
    pairs = valid_split.load_other(valid_split_file)
  else:
    split_name = 'valid_split.json'
    pairs = valid_split.load()
  validation = [tuple(pair) for pair in pairs.tolist()]
  if len(set(validation)) != len(validation):
    raise manual_files.ManualFileError(
        f'{split_name}: the validation split lists a person twice')
  for image, person in validation:
    if (image >= len(release.persons) or person >= len(release.persons[image])
        or not release.is_train[image]
        or not release.persons[image][person].annotated
        or not release.persons[image][person].locatable
        or not release.persons[image][person].has_head_box):
      raise manual_files.ManualFileError(
          f'{path}: the validation person RELEASE_img_index={image + 1}, '
          f'RELEASE_person_index={person + 1} ({split_name}) should be an '
          'annotated person of a training image with objpos, scale and a '
          f'head box (PCKh); is this {ANNOTATION_FILE}'
          + (' and the split made for it?' if valid_split_file else '?'))
  held_out = set(validation)
  train, test = [], []
  for image, persons in enumerate(release.persons):
    for index, person in enumerate(persons):
      if not person.locatable:
        continue
      if not release.is_train[image]:
        test.append((image, index))
      elif person.annotated and (image, index) not in held_out:
        train.append((image, index))
  return {'train': train, 'validation': validation, 'test': test}


def read_validation_persons(path: os.PathLike | str,
                            valid_split_file: str = '') -> list[MpiiPerson]:
  """The validation persons, in split order, from MPII's own annotations.

  ``path``: the RELEASE file (mpii_human_pose_v1_u12_1.mat; persons chosen
  by valid_split.json, or by ``valid_split_file``) or valid_annolist.mat
  (one annorect per entry). Scoring against these avoids gt_valid.mat's 13
  zeroed coordinates.
  """
  path = os.fspath(path)
  names = {name for name, _, _ in scipy.io.whosmat(path)}
  if 'RELEASE' in names:
    release = read_release(path)
    return [release.persons[image][person] for image, person
            in split_persons(release, path, valid_split_file)['validation']]
  annolist = manual_files.load_mat(
      path, ('annolist',), 'MPII annotations: the RELEASE struct or '
      'valid_annolist.mat\'s annolist')['annolist']
  persons = []
  for i, rects in enumerate(parse_annolist(annolist, path)):
    if len(rects) != 1 or not rects[0].has_head_box:
      raise manual_files.ManualFileError(
          f'{path}: annolist({i + 1}) should hold one annotated person with '
          f'a head box (valid_annolist.mat layout), got {len(rects)} '
          'annorect(s)' + ('' if len(rects) != 1 else ' without head box'))
    persons.append(rects[0])
  return persons


class MpiiPose(tfds.core.GeneratorBasedBuilder):
  """MPII Human Pose, one example per person; see the module docstring."""

  VERSION = tfds.core.Version(manual_files.BUILDER_VERSION)
  RELEASE_NOTES = manual_files.BUILDER_RELEASE_NOTES
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

  def __init__(self, *, bad_images: str = 'error', valid_split_file: str = '',
               **kwargs):
    """Args: bad_images, 'error' or 'skip' (manual_files.generate);
    valid_split_file, '' for the standard validation split or a .mat in
    valid_annolist.mat's layout."""
    self._bad_images = manual_files.check_bad_images(bad_images)
    self._valid_split_file = os.fspath(valid_split_file)
    super().__init__(file_format='array_record', **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return features.dataset_info(
        self, description=__doc__.splitlines()[0],
        disable_shuffling=True,
        features=features.pose_features(
            NUM_JOINTS,
            occluded=tfds.features.Tensor(shape=(NUM_JOINTS,),
                                             dtype=np.bool_),
            head_box=tfds.features.Tensor(shape=(4,), dtype=np.float32),
            person_center=tfds.features.Tensor(shape=(2,),
                                                  dtype=np.float32),
            person_scale=tfds.features.Tensor(shape=(), dtype=np.float32),
            distractor_joints=tfds.features.Tensor(
                shape=(MAX_DISTRACTORS, NUM_JOINTS, 2), dtype=np.float32),
            distractor_visible=tfds.features.Tensor(
                shape=(MAX_DISTRACTORS, NUM_JOINTS), dtype=np.bool_),
            num_distractors=tfds.features.Tensor(shape=(), dtype=np.int32),
            image_name=tfds.features.Text(),
            annolist_index=tfds.features.Tensor(shape=(), dtype=np.int32),
            annorect_index=tfds.features.Tensor(shape=(), dtype=np.int32),
        ),
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    path = os.path.join(dl_manager.manual_dir, ANNOTATION_FILE)
    release = read_release(path)
    image_dir = os.path.join(dl_manager.manual_dir, IMAGE_FOLDER)
    self.info.metadata['valid_split'] = split_description(
        self._valid_split_file)
    return {split: self._generate_examples(split, release, image_dir, pairs)
            for split, pairs in split_persons(
                release, path, self._valid_split_file).items()}

  def _generate_examples(self, split, release, image_dir, pairs):
    # The persons of an image are consecutive: read it once for all of them.
    @functools.lru_cache(maxsize=1)
    def read_image(image):
      return manual_files.read_rgb_image(
          os.path.join(image_dir, release.image_names[image]),
          f'the MPII image annolist({image + 1}).image.name')

    def make(image, person):
      return make_record(release, image, person, read_image(image))

    return manual_files.generate(
        split, ((key, functools.partial(make, image, person))
                for key, (image, person) in enumerate(pairs)),
        self._bad_images, self.info.metadata)


def make_record(release: MpiiRelease, image: int, person: int,
                image_bytes: bytes) -> dict:
  """The builder's features of person ``person`` of image ``image``."""
  target = release.persons[image][person]
  others = [p for k, p in enumerate(release.persons[image])
            if k != person and p.annotated]
  if target.center is not None:
    others.sort(key=lambda p: _distance(p, target.center))
  others = others[:MAX_DISTRACTORS]
  distractor_joints = np.zeros((MAX_DISTRACTORS, NUM_JOINTS, 2), np.float32)
  distractor_visible = np.zeros((MAX_DISTRACTORS, NUM_JOINTS), bool)
  for k, other in enumerate(others):
    distractor_joints[k] = other.joints
    distractor_visible[k] = other.visible
  return {
      'image': image_bytes,
      'joints': target.joints,
      'visible': target.visible,
      'occluded': target.occluded,
      'head_box': target.head_box,
      'person_center': target.center,
      'person_scale': np.float32(SCALE_UNIT * target.scale),
      'distractor_joints': distractor_joints,
      'distractor_visible': distractor_visible,
      'num_distractors': np.int32(len(others)),
      'image_name': release.image_names[image],
      'annolist_index': np.int32(image),
      'annorect_index': np.int32(person),
  }


def _distance(person: MpiiPerson, point: np.ndarray) -> float:
  centre = (person.center if person.center is not None
            else person.joints[person.visible].mean(axis=0))
  return float(np.linalg.norm(centre - point))


def split_description(valid_split_file: str) -> str:
  """What the builder's metadata records as its validation split."""
  if not valid_split_file:
    return 'standard (valid_split.json)'
  return os.path.abspath(valid_split_file)


def build(manual_dir: os.PathLike | str, data_dir: os.PathLike | str,
          bad_images: str = 'error',
          valid_split_file: os.PathLike | str = '') -> MpiiPose:
  """Builds MPII from ``manual_dir`` into ``data_dir`` (a no-op when already
  built) and returns the builder. ``bad_images``: 'error' or 'skip' (see
  `manual_files.generate`); ``valid_split_file``: '' for the standard
  validation split, else a .mat in valid_annolist.mat's layout. A data_dir
  built with another validation split is refused, not silently reused."""
  valid_split_file = os.fspath(valid_split_file)
  builder = MpiiPose(data_dir=os.fspath(data_dir), bad_images=bad_images,
                     valid_split_file=valid_split_file)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.fspath(manual_dir)))
  built_with = builder.info.metadata.get('valid_split',
                                         split_description(''))
  if built_with != split_description(valid_split_file):
    raise manual_files.ManualFileError(
        f'{builder.data_dir} was built with the validation split '
        f'{built_with}, not data.valid_split_file={valid_split_file!r}: use '
        'another data.data_dir (or delete that one) to build with this split')
  return builder
