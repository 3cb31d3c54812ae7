"""Runs a trained checkpoint on images of any size: joints in image pixels.

    predictor = Predictor.from_checkpoint('workdirs/demo')
    joints, scores = predictor.predict(image)   # image: uint8 [H, W, 3] RGB

The crop follows the training convention (`pipeline.person_box`): a box
of width box_scale * person_scale (height in the model's input aspect),
centred on the person, resized to the model input. At prediction time the
person's scale and centre are unknown, so the default crop rule is: **the
person fills the image**, i.e. person_scale = the image height and the
centre = the image centre. A torso (x, y) moves the centre there; a bounding
box (x1, y1, x2, y2) sets the centre to the box centre (unless a torso is
given) and person_scale to the box height.

Multi-scale search (paper Sec. 5: run the detector at several scales and
aggregate the heat-map activations across them): ``scales`` multiply the
assumed person_scale (0.5 = a person half the default size). The
activations are aggregated by their maximum over scales, per joint: each
joint is taken from the scale whose coarse heat-map peaks highest there, and
a cascade's fine location is the one found at that scale.

Flip test (``flip=True``, `inference.predict`): the crops and their mirror
images both go through the model, and each joint's heat-maps (coarse and,
for a cascade, fine) are the average of the two, left and right swapped.

Scores (`SCORE_MEANING`) are the coarse heat-map peaks (of the averaged maps
with flip): the training targets peak at 1, so a score near 1 is a confident
detection and one near 0 a guess. `predict_files` can mark the joints below
a ``min_score`` and leave them out of the overlay; `checkpoint_warning` and
`score_warning` say when the answers deserve little trust (a model trained
on synthetic figures, most scores low).
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import json
import os

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cascade_jax import drawing
from cascade_jax import geometry
from cascade_jax import inference
from cascade_jax import joint_sets
from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.eval import evaluate
from cascade_jax.model import build
from cascade_jax.model import spatial
from cascade_jax.train import checkpoint


@dataclasses.dataclass(frozen=True)
class Prediction:
  """Everything the model saw and said about one image.

  Attributes:
    joints: [J, 2] float (x, y) final predictions in original-image pixels
      (fine locations for a cascade, coarse ones otherwise).
    scores: [J] coarse heat-map peak of each joint at its chosen scale.
    coarse_joints: [J, 2] the coarse argmax in original-image pixels.
    scale_index: [J] int, which of ``scales`` each joint was taken from.
    scales: [S] the person-scale multipliers that were searched.
    crops: [S, H, W, 3] uint8 model inputs, one per scale.
    heatmaps: [S, h, w, J] float32 coarse heat-maps, one per scale.
    crop_to_image: [S, 3, 3] model-input pixels -> original-image pixels.
  """
  joints: np.ndarray
  scores: np.ndarray
  coarse_joints: np.ndarray
  scale_index: np.ndarray
  scales: tuple[float, ...]
  crops: np.ndarray
  heatmaps: np.ndarray
  crop_to_image: np.ndarray


def default_crop(image_shape, torso=None, bbox=None
                 ) -> tuple[np.ndarray, float]:
  """(centre (x, y), person_scale) of the crop rule in the module docstring.

  Args:
    image_shape: (H, W, ...) of the image.
    torso: optional (x, y) in image pixels.
    bbox: optional (x1, y1, x2, y2) in image pixels, x2 > x1 and y2 > y1.
  """
  height, width = image_shape[:2]
  center = np.array([(width - 1) / 2, (height - 1) / 2])
  person_scale = float(height)
  if bbox is not None:
    x1, y1, x2, y2 = (float(v) for v in bbox)
    if x2 <= x1 or y2 <= y1:
      raise ValueError(f'bbox must be (x1, y1, x2, y2) with x2 > x1 and '
                       f'y2 > y1, got {tuple(bbox)}')
    center = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    person_scale = y2 - y1
  if torso is not None:
    center = np.asarray(torso, np.float64).reshape(2)
  return center, person_scale


def as_rgb(image: np.ndarray) -> np.ndarray:
  """uint8 [H, W, 3] RGB from a grey [H, W] / [H, W, 1], RGB or RGBA array."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise ValueError(f'image must be uint8 (0-255), got dtype {image.dtype}')
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
    raise ValueError('image must be [H, W], [H, W, 1], [H, W, 3] or '
                     f'[H, W, 4], got shape {image.shape}')
  if image.shape[-1] == 1:
    return np.repeat(image, 3, axis=-1)
  return image[..., :3]


class Predictor:
  """A trained model with its crop convention, ready to run on images.

  Attributes:
    config: the experiment config the checkpoint was trained with.
    joint_set: names and skeleton of the predicted joints.
    step: the training step of the restored parameters.
  """

  def __init__(self, config: ml_collections.ConfigDict, params, step: int,
               batch_size: int = 16):
    """Use `from_checkpoint`; ``params`` are the model's 'params' tree."""
    self.config = config
    self.joint_set: joint_sets.JointSet = datasets.joint_set(config.data)
    self.step = step
    self._model = _model(config, self.joint_set)
    self._params = params
    self._batch_size = batch_size
    self._input_size = tuple(int(v) for v in config.data.input_size)  # (W, H)
    self._crop_spec = pipeline.crop_spec(config, self.joint_set)
    self._forwards = {}  # flip -> the jitted `_forward`

  def _forward(self, flip: bool):
    """The jitted `_forward`, compiled once per flip setting."""
    if flip not in self._forwards:
      self._forwards[flip] = jax.jit(functools.partial(
          _forward, model=self._model, is_cascade=build.is_cascade(self._model),
          stride=self.config.model.pooling, subpixel=self.config.eval.subpixel,
          fusion=evaluate.fusion_options(self.config.eval),
          flip_permutation=(tuple(self.joint_set.flip_permutation.tolist())
                            if flip else None)))
    return self._forwards[flip]

  @classmethod
  def from_checkpoint(cls, workdir: str, batch_size: int = 16) -> Predictor:
    """The latest checkpoint of a training ``workdir`` and its saved config."""
    # make_manager would create an empty checkpoints/ in a mistyped workdir.
    if not os.path.isdir(os.path.join(workdir, 'checkpoints')):
      raise FileNotFoundError(
          f'no checkpoints/ folder in {workdir!r}: point at the --workdir of '
          'a training run')
    config = checkpoint.restore_config(workdir)
    model = _model(config, datasets.joint_set(config.data))
    state = checkpoint.restore_latest_state(workdir, config, model)
    return cls(config, state.params, int(state.step), batch_size)

  def predict(self, image: np.ndarray, torso=None, bbox=None,
              scales=(1.0,), flip: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """Joints [J, 2] (x, y) in ``image`` pixels and their scores [J].

    Args:
      image: uint8 [H, W, 3] RGB (grey and RGBA are accepted), any size.
      torso: optional (x, y) torso position: the crop is centred there.
      bbox: optional (x1, y1, x2, y2) person box.
      scales: person-scale multipliers; several = multi-scale search.
      flip: the flip test (module docstring).
    """
    prediction = self.predict_images([image], [torso], [bbox], scales,
                                     flip)[0]
    return prediction.joints, prediction.scores

  def predict_images(self, images, torsos=None, bboxes=None, scales=(1.0,),
                     flip: bool = False) -> list[Prediction]:
    """`predict` for a list of images, run in batches; full `Prediction`s."""
    images = [as_rgb(image) for image in images]
    torsos = [None] * len(images) if torsos is None else list(torsos)
    bboxes = [None] * len(images) if bboxes is None else list(bboxes)
    if not len(images) == len(torsos) == len(bboxes):
      raise ValueError(f'got {len(images)} images, {len(torsos)} torsos and '
                       f'{len(bboxes)} bboxes: one each per image')
    crops = [default_crop(image.shape, torso, bbox)
             for image, torso, bbox in zip(images, torsos, bboxes)]
    return self.predict_crops(images, [c for c, _ in crops],
                              [s for _, s in crops], scales, flip)

  def predict_crops(self, images, centers, person_scales, scales=(1.0,),
                    flip: bool = False) -> list[Prediction]:
    """Predictions for crops given as the training data gives them.

    Args:
      images: uint8 [H, W, 3] RGB arrays.
      centers: per image, the crop centre (x, y) in image pixels.
      person_scales: per image, the person_scale of the training records.
      scales: person-scale multipliers searched for every image.
      flip: the flip test (module docstring).
    """
    if not images:
      return []
    scales = tuple(float(s) for s in scales)
    if not scales or min(scales) <= 0:
      raise ValueError(f'scales must be positive numbers, got {scales}')
    matrices, crops = [], []
    for image, center, person_scale in zip(images, centers, person_scales):
      for scale in scales:
        box = pipeline.person_box(self._crop_spec, float(person_scale) * scale)
        matrix = geometry.crop_matrix(center, box, self._input_size)
        matrices.append(geometry.invert(matrix))
        crops.append(geometry.warp_image(as_rgb(image), matrix,
                                         self._input_size))
    crops, matrices = np.stack(crops), np.stack(matrices)
    outputs = self._run(crops, flip)
    num_scales = len(scales)
    return [self._combine(outputs, matrices, crops,
                          slice(i * num_scales, (i + 1) * num_scales), scales)
            for i in range(len(images))]

  def _run(self, crops: np.ndarray, flip: bool) -> dict[str, np.ndarray]:
    """The jitted forward pass over [N, H, W, 3] crops, in fixed-size batches
    (the last one padded) so that it compiles once."""
    outputs = {}
    for begin in range(0, len(crops), self._batch_size):
      batch = crops[begin:begin + self._batch_size]
      size = len(batch)
      if size < self._batch_size:
        batch = np.concatenate(
            [batch, np.zeros((self._batch_size - size,) + batch.shape[1:],
                             batch.dtype)])
      for name, value in self._forward(flip)(self._params, batch).items():
        outputs.setdefault(name, []).append(np.asarray(value)[:size])
    return {name: np.concatenate(value) for name, value in outputs.items()}

  def _combine(self, outputs, matrices, crops, rows, scales) -> Prediction:
    """One image's `Prediction` from its rows (one per scale) of the outputs."""
    scores = outputs['scores'][rows]  # [S, J]
    best = np.argmax(scores, axis=0)  # [J]: max over scales, per joint
    joints_index = np.arange(scores.shape[1])

    def to_image(name):
      joints = outputs[name][rows]  # [S, J, 2] input pixels
      image_joints = np.stack([geometry.transform_points(m, j)
                               for m, j in zip(matrices[rows], joints)])
      return image_joints[best, joints_index]

    coarse_joints = to_image('coarse')
    final = to_image('cascade') if 'cascade' in outputs else coarse_joints
    return Prediction(joints=final, scores=scores[best, joints_index],
                      coarse_joints=coarse_joints, scale_index=best,
                      scales=scales, crops=crops[rows],
                      heatmaps=outputs['heatmaps'][rows],
                      crop_to_image=matrices[rows])


def _model(config: ml_collections.ConfigDict, joint_set):
  """The config's model, with its spatial model if any (parameters restored,
  so no kernel file is needed)."""
  return build.build_model(
      config.model, joint_set.num_joints,
      spatial.build(config, joint_set, initial_kernels=False))


def _forward(params, images, *, model, is_cascade: bool, stride: int,
             subpixel: bool, fusion: dict, flip_permutation
             ) -> dict[str, jax.Array]:
  """uint8 crops [B, H, W, 3] -> `inference.predict`'s outputs (model-input
  pixels) with the coarse 'heatmaps' [B, h, w, J]. A spatial model gets the
  crop centre as the torso: crops are centred on it, as in training."""
  torso = None
  if getattr(model, 'spatial', None) is not None:
    batch, height, width = images.shape[:3]
    torso = jnp.tile(jnp.array([(width - 1) / 2, (height - 1) / 2],
                               jnp.float32), (batch, 1))
  return inference.predict(
      model.apply, params, images.astype(jnp.float32) / 255.0, torso,
      is_cascade=is_cascade, stride=stride, subpixel=subpixel,
      flip_permutation=flip_permutation, return_heatmaps=True, **fusion)


# What a joint's score is, written into every prediction JSON.
SCORE_MEANING = ('peak of the joint\'s coarse heat-map (with flip: of the '
                 'map averaged with the mirror image\'s); training targets '
                 'peak at 1, so near 1 = confident, near 0 = a guess')
# A joint scoring below this is called low by `score_warning` (measured:
# BUILD_NOTES, issue 17).
LOW_SCORE = 0.3


def trained_on_synthetic(config: ml_collections.ConfigDict) -> bool:
  """Whether the checkpoint's config trained on the synthetic figures."""
  return str(config.data.name).startswith('synthetic')


def checkpoint_warning(config: ml_collections.ConfigDict) -> str | None:
  """A warning for a checkpoint trained on synthetic figures, else None."""
  if not trained_on_synthetic(config):
    return None
  return (f'this checkpoint was trained on synthetic figures (data.name = '
          f'{config.data.name}): on photographs its joints mean little. For '
          'real images train on FLIC, MPII or LSP (configs/flic_8x.py, '
          'configs/mpii.py; README: which model for which images).')


def score_warning(results, cropped: bool, low: float = LOW_SCORE
                  ) -> str | None:
  """A warning when most joint scores of ``results`` (the prediction JSON
  dicts of `predict_files`) are below ``low``, else None. ``cropped``: a
  torso or a box was given."""
  scores = np.array([joint['score'] for result in results
                     for joint in result['joints'].values()])
  if not scores.size or np.mean(scores < low) <= 0.5:
    return None
  advice = ('the box or torso given may miss the person, or the model does '
            'not know this kind of image' if cropped else
            'without --bbox or --torso the crop assumes that the person fills '
            'the image, centred: give --bbox=X1,Y1,X2,Y2 (the person\'s box) '
            'or --torso=X,Y, or search sizes with --scales=0.5,0.7,1')
  return (f'{int(np.sum(scores < low))} of {scores.size} joint scores are '
          f'below {low:g} (heat-map peaks; a confident joint scores near 1): '
          f'{advice}.')


IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


class UnreadableImagesError(ValueError):
  """Some images could not be read; the message lists each file and why."""


def resolve_images(spec: str) -> list[str]:
  """Image paths named by ``spec``: a file, a folder (its image files, by
  extension, sorted) or a glob pattern (sorted matches)."""
  if os.path.isdir(spec):
    paths = sorted(os.path.join(spec, name) for name in os.listdir(spec)
                   if name.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
      raise FileNotFoundError(f'folder {spec!r} holds no image files '
                              f'({", ".join(IMAGE_EXTENSIONS)})')
    return paths
  if glob.has_magic(spec):
    paths = sorted(p for p in glob.glob(spec) if os.path.isfile(p))
    if not paths:
      raise FileNotFoundError(f'no file matches {spec!r}')
    return paths
  if not os.path.exists(spec):
    raise FileNotFoundError(f'no such image, folder or pattern: {spec!r}')
  return [spec]


def read_image(path: str) -> np.ndarray:
  """uint8 [H, W, 3] RGB pixels of an image file; raises ValueError naming
  the file when it is missing or cannot be decoded."""
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    raise ValueError(f'cannot read {path!r}: {e.strerror}') from None
  if not data:
    raise ValueError(f'cannot decode {path!r}: the file is empty')
  try:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  except cv2.error:
    image = None
  if image is None:
    raise ValueError(f'cannot decode {path!r} as an image ({len(data)} bytes; '
                     f'expected a {"/".join(IMAGE_EXTENSIONS)} file)')
  return np.ascontiguousarray(image[..., ::-1])


def predict_files(predictor: Predictor, paths, out_dir: str, torso=None,
                  bbox=None, scales=(1.0,), batch_size: int = 16,
                  flip: bool = False, min_score: float | None = None
                  ) -> list[str]:
  """Predicts every image of ``paths``; writes <name>.json and
  <name>_overlay.png per image into ``out_dir``.

  The JSON holds the image size, the joints in original-image pixels with a
  score each (`SCORE_MEANING`), how the crop was chosen and whether the flip
  test ran. With ``min_score`` each joint says whether its score reaches it
  ('shown'), and the overlay leaves out the joints that do not (and their
  limbs). Images that cannot be read are
  skipped and, once every other image is done, reported together in an
  `UnreadableImagesError`.

  Returns:
    The JSON paths written, in the order of ``paths``.
  """
  os.makedirs(out_dir, exist_ok=True)
  names = _output_names(paths)
  written, failures = [], []
  for begin in range(0, len(paths), batch_size):
    batch_paths, images = [], []
    for path in paths[begin:begin + batch_size]:
      try:
        images.append(read_image(path))
        batch_paths.append(path)
      except ValueError as e:
        failures.append(str(e))
    predictions = predictor.predict_images(
        images, [torso] * len(images), [bbox] * len(images), scales, flip)
    for path, image, prediction in zip(batch_paths, images, predictions):
      stem = os.path.join(out_dir, names[path])
      shown = (np.ones(len(prediction.scores), bool) if min_score is None
               else prediction.scores >= min_score)
      _write_json(stem + '.json', path, image, prediction, predictor, torso,
                  bbox, flip, min_score, shown)
      overlay = drawing.draw_skeleton(image, prediction.joints,
                                      predictor.joint_set, visible=shown)
      cv2.imwrite(stem + '_overlay.png', overlay[..., ::-1])
      written.append(stem + '.json')
    print(f'predicted {min(begin + batch_size, len(paths))}/{len(paths)} '
          f'images', flush=True)
  if failures:
    raise UnreadableImagesError(
        f'{len(failures)} of {len(paths)} images could not be read (the '
        f'others were written to {out_dir}):\n  ' + '\n  '.join(failures))
  return written


def _output_names(paths) -> dict[str, str]:
  """A unique output stem per input path: its file stem, then '-2', '-3'..."""
  names, taken = {}, set()
  for path in paths:
    stem = os.path.splitext(os.path.basename(path))[0]
    name, count = stem, 1
    while name in taken:
      count += 1
      name = f'{stem}-{count}'
    taken.add(name)
    names[path] = name
  return names


def _write_json(path, image_path, image, prediction: Prediction,
                predictor: Predictor, torso, bbox, flip, min_score, shown
                ) -> None:
  height, width = image.shape[:2]
  result = {
      'image': image_path,
      'width': width,
      'height': height,
      'joint_set': predictor.joint_set.name,
      'checkpoint_step': predictor.step,
      'trained_on': str(predictor.config.data.name),
      'flip': flip,
      'score': SCORE_MEANING,
      'min_score': min_score,
      'crop': {'torso': None if torso is None else [float(v) for v in torso],
               'bbox': None if bbox is None else [float(v) for v in bbox],
               'scales': list(prediction.scales)},
      'joints': {
          name: {'x': float(x), 'y': float(y), 'score': float(score),
                 'scale': prediction.scales[int(s)], 'shown': bool(show)}
          for name, (x, y), score, s, show in zip(
              predictor.joint_set.joints, prediction.joints,
              prediction.scores, prediction.scale_index, shown)},
  }
  with open(path, 'w') as f:
    json.dump(result, f, indent=2)
