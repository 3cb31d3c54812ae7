"""Renderer of synthetic people on clutter: pure numpy + OpenCV.

A figure is a 2D kinematic tree (pelvis, hips, knees, ankles, thorax, neck,
head, shoulders, elbows, wrists, eyes, nose) with human proportions and
joint-angle limits, front- or back-facing. Labels follow the person, as in FLIC
and MPII: a front-facing person's left side is on the image right, a
back-facing person's on the image left.

Shapes are drawn from signed-distance fields evaluated over each shape's
bounding box, with one pixel of anti-aliasing, so every joint is exactly where
its limb segments end: coordinates are (x, y) with pixel centres at integer
positions (the convention of `cascade_jax.geometry`). Lengths in the body frame
are fractions of the person's standing height (head top to ankles).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from cascade_jax import geometry
from cascade_jax import joint_sets

# The full tree the renderer poses; joint sets pick their joints from it.
BODY_JOINTS = ('pelvis', 'l_hip', 'r_hip', 'l_knee', 'r_knee', 'l_ankle',
               'r_ankle', 'thorax', 'upper_neck', 'head_top', 'l_shoulder',
               'r_shoulder', 'l_elbow', 'r_elbow', 'l_wrist', 'r_wrist',
               'l_eye', 'r_eye', 'nose')
_B = {name: i for i, name in enumerate(BODY_JOINTS)}
# Joint-set names that differ from the tree's.
_ALIASES = {'neck': 'upper_neck'}
# Joints framed by an upper-body (FLIC-style) image; legs may leave the frame.
_UPPER_BODY = tuple(j for j in BODY_JOINTS
                    if j not in ('l_knee', 'r_knee', 'l_ankle', 'r_ankle'))
_UPPER_BODY_HEIGHT = 0.53  # head top to hips, as a fraction of the height.


@dataclasses.dataclass(frozen=True)
class Difficulty:
  """How hard a scene is; ranges are inclusive (min, max).

  Attributes:
    figure_height: height of the framed part of the annotated figure (whole
      body, or head top to hips for upper-body framing) / image height.
    rotation_deg: in-plane rotation of the annotated figure, uniform in +-this.
    center_jitter: offset of the figure's centre from the image centre, uniform
      in +-this fraction of the image size.
    back_facing_prob: probability that a figure faces away from the camera.
    num_distractors: range of the number of other people (0 to 2).
    clutter_strokes: range of the number of limb-like background strokes.
    clutter_shapes: range of the number of background rectangles / ellipses.
    occlusion_prob: probability of an occluder over part of the annotated
      figure.
  """
  figure_height: tuple[float, float] = (0.6, 0.85)
  rotation_deg: float = 20.0
  center_jitter: float = 0.08
  back_facing_prob: float = 0.2
  num_distractors: tuple[int, int] = (0, 2)
  clutter_strokes: tuple[int, int] = (2, 8)
  clutter_shapes: tuple[int, int] = (2, 6)
  occlusion_prob: float = 0.25

  def __post_init__(self):
    low, high = self.num_distractors
    if not 0 <= low <= high <= 2:
      raise ValueError('num_distractors must be a range inside [0, 2], got '
                       f'{self.num_distractors}')
    low, high = self.figure_height
    if not 0 < low <= high:
      raise ValueError('figure_height must be a range (min, max) with '
                       f'0 < min <= max, got {self.figure_height}')
    for field in ('clutter_strokes', 'clutter_shapes'):
      low, high = getattr(self, field)
      if not 0 <= low <= high:
        raise ValueError(f'{field} must be a range (min, max) with '
                         f'0 <= min <= max, got {(low, high)}')
    for field in ('back_facing_prob', 'occlusion_prob'):
      if not 0.0 <= getattr(self, field) <= 1.0:
        raise ValueError(f'{field} must be a probability, got '
                         f'{getattr(self, field)}')


@dataclasses.dataclass(frozen=True)
class Figure:
  """A posed person in image coordinates.

  Attributes:
    joints: [len(BODY_JOINTS), 2] float64 (x, y) of every joint of the tree.
    height: the person's standing height in pixels (head top to ankles).
    back_facing: whether the person faces away from the camera.
  """
  joints: np.ndarray
  height: float
  back_facing: bool

  def joints_for(self, joint_set: joint_sets.JointSet) -> np.ndarray:
    """[J, 2] float64: this figure's joints in ``joint_set``'s order."""
    return self.joints[body_indices(joint_set)]

  def framed_joints(self, upper_body: bool) -> np.ndarray:
    """[N, 2] float64: the joints an image frames (see `render_scene`)."""
    return self.joints[_framed_indices(upper_body)]


@dataclasses.dataclass(frozen=True)
class Scene:
  """A rendered image with its annotated figure and the distractor figures."""
  image: np.ndarray  # [H, W, 3] uint8 RGB.
  figure: Figure
  distractors: tuple[Figure, ...]


def body_indices(joint_set: joint_sets.JointSet) -> np.ndarray:
  """[J] int: rows of BODY_JOINTS holding ``joint_set``'s joints."""
  indices = []
  for joint in joint_set.joints:
    name = _ALIASES.get(joint, joint)
    if name not in _B:
      raise KeyError(f'joint set {joint_set.name!r}: the renderer has no '
                     f'joint {joint!r}; it draws {BODY_JOINTS}')
    indices.append(_B[name])
  return np.array(indices)


# --------------------------------------------------------------------------
# Pose.


def _unit(deg):
  """Unit vector at ``deg`` from straight down, positive towards +x."""
  rad = np.deg2rad(deg)
  return np.array([np.sin(rad), np.cos(rad)])


def sample_pose(rng: np.random.Generator, back_facing: bool) -> np.ndarray:
  """A random pose in the body frame, [len(BODY_JOINTS), 2].

  Units are the standing height; y points down; the standing head top is near
  y = 0 and the ankles near y = 1. The person's left is at +x when front-facing
  and at -x when back-facing. Angles are 2D projections of plausible 3D ones
  (limb lengths are foreshortened at random).
  """
  u = rng.uniform
  p = np.zeros((len(BODY_JOINTS), 2))
  yaw = u(-35, 35)  # Body turn: narrows the torso, moves the face sideways.
  width = np.cos(np.deg2rad(yaw))
  lean = u(-12, 12)
  down = _unit(lean)
  side = np.array([down[1], -down[0]])  # The person's left (front-facing).
  p[_B['pelvis']] = (0.0, 0.53)
  p[_B['thorax']] = p[_B['pelvis']] - 0.33 * u(0.9, 1.0) * down
  for s, name in ((1, 'l'), (-1, 'r')):
    p[_B[f'{name}_hip']] = p[_B['pelvis']] + s * 0.075 * width * side
    p[_B[f'{name}_shoulder']] = (p[_B['thorax']] + s * 0.115 * width * side
                                 + 0.015 * down)
  tilt = lean + u(-20, 20)
  p[_B['upper_neck']] = p[_B['thorax']] - 0.045 * _unit(tilt)
  p[_B['head_top']] = p[_B['upper_neck']] - 0.145 * _unit(tilt)
  # Face: eyes at 45% of the head down from the top, nose at 65%.
  head_down = _unit(tilt)
  head_left = np.array([head_down[1], -head_down[0]])
  face_shift = 0.025 * np.sin(np.deg2rad(yaw))
  for s, name in ((1, 'l'), (-1, 'r')):
    p[_B[f'{name}_eye']] = (p[_B['head_top']] + 0.065 * head_down
                            + (s * 0.022 * width + face_shift) * head_left)
  p[_B['nose']] = (p[_B['head_top']] + 0.094 * head_down
                   + 1.3 * face_shift * head_left)
  # Limbs: angles from straight down (tilted by the lean), positive = outwards
  # for each side; the elbow mostly folds inwards, the knee either way.
  for s, name in ((1, 'l'), (-1, 'r')):
    arm = lean + s * u(-30, 165)
    elbow = arm - s * u(-100, 145)
    p[_B[f'{name}_elbow']] = (p[_B[f'{name}_shoulder']]
                              + 0.175 * u(0.6, 1.0) * _unit(arm))
    p[_B[f'{name}_wrist']] = (p[_B[f'{name}_elbow']]
                              + 0.15 * u(0.6, 1.0) * _unit(elbow))
    thigh = s * u(-12, 40)
    shin = thigh + s * u(-35, 35)
    p[_B[f'{name}_knee']] = (p[_B[f'{name}_hip']]
                             + 0.24 * u(0.65, 1.0) * _unit(thigh))
    p[_B[f'{name}_ankle']] = (p[_B[f'{name}_knee']]
                              + 0.235 * u(0.75, 1.0) * _unit(shin))
  if back_facing:
    p[:, 0] = -p[:, 0]
  return p


# --------------------------------------------------------------------------
# Drawing: signed-distance fields over bounding boxes, alpha-composited into a
# float32 RGB canvas in [0, 255].


def _window(canvas, lo, hi):
  """Integer pixel ranges covering [lo, hi] (x, y) plus one pixel, clipped."""
  h, w = canvas.shape[:2]
  x0, y0 = max(int(np.floor(lo[0])) - 1, 0), max(int(np.floor(lo[1])) - 1, 0)
  x1, y1 = min(int(np.ceil(hi[0])) + 2, w), min(int(np.ceil(hi[1])) + 2, h)
  if x0 >= x1 or y0 >= y1:
    return None
  ys = np.arange(y0, y1, dtype=np.float32)[:, None]
  xs = np.arange(x0, x1, dtype=np.float32)[None, :]
  return (slice(y0, y1), slice(x0, x1)), xs, ys


def _composite(canvas, region, coverage, colour, shade):
  """Blends ``colour`` * ``shade`` into ``canvas[region]`` with ``coverage``."""
  alpha = np.clip(coverage, 0.0, 1.0)[..., None]
  target = canvas[region]
  paint = np.asarray(colour, np.float32) * shade[..., None]
  target += alpha * (paint - target)


def draw_capsule(canvas, a, b, radius_a, radius_b, colour, shading=0.35):
  """Draws a tapered capsule from ``a`` to ``b`` (x, y) into ``canvas``.

  The shape is the set of points within r(t) of the segment, r interpolated
  from ``radius_a`` to ``radius_b``; its axis is exactly the segment a-b, so a
  joint drawn as a segment end is where the limb visibly ends or bends. Edges
  are anti-aliased over one pixel; ``shading`` darkens towards the rim
  (a cylinder lit from the front).
  """
  a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
  r_max = max(radius_a, radius_b)
  window = _window(canvas, np.minimum(a, b) - r_max, np.maximum(a, b) + r_max)
  if window is None:
    return
  region, xs, ys = window
  ab = b - a
  length2 = max(float(ab @ ab), 1e-12)
  px, py = xs - a[0], ys - a[1]
  t = np.clip((px * ab[0] + py * ab[1]) / length2, 0.0, 1.0)
  dx, dy = px - t * ab[0], py - t * ab[1]
  dist = np.sqrt(dx * dx + dy * dy)
  radius = radius_a + t * (radius_b - radius_a)
  coverage = 0.5 + radius - dist
  shade = 1.0 - shading * np.minimum(dist / radius, 1.0) ** 2
  _composite(canvas, region, coverage, colour, shade)


def draw_ellipse(canvas, center, axis_u, half_u, half_v, colour, shading=0.3):
  """Draws a filled ellipse with semi-axis ``half_u`` along unit ``axis_u``."""
  c = np.asarray(center, np.float32)
  uu = np.asarray(axis_u, np.float32)
  r = max(half_u, half_v)
  window = _window(canvas, c - r, c + r)
  if window is None:
    return
  region, xs, ys = window
  px, py = xs - c[0], ys - c[1]
  pu = (px * uu[0] + py * uu[1]) / half_u
  pv = (py * uu[0] - px * uu[1]) / half_v
  norm = np.sqrt(pu * pu + pv * pv)
  # First-order distance to the rim, in pixels.
  coverage = 0.5 + (1.0 - norm) * min(half_u, half_v)
  shade = 1.0 - shading * np.minimum(norm, 1.0) ** 2
  _composite(canvas, region, coverage, colour, shade)


def draw_polygon(canvas, vertices, inflate, colour, shading=0.3):
  """Draws a convex polygon [V, 2] grown by ``inflate`` px (rounded corners)."""
  v = np.asarray(vertices, np.float32)
  window = _window(canvas, v.min(0) - inflate, v.max(0) + inflate)
  if window is None:
    return
  region, xs, ys = window
  orientation = np.sign(_cross(v[1] - v[0], v[2] - v[0])) or 1.0
  dist = np.full(np.broadcast(xs, ys).shape, np.inf, np.float32)
  inside = np.ones_like(dist, bool)
  for k in range(len(v)):
    a, b = v[k], v[(k + 1) % len(v)]
    ab = b - a
    px, py = xs - a[0], ys - a[1]
    t = np.clip((px * ab[0] + py * ab[1]) / max(float(ab @ ab), 1e-12), 0, 1)
    dist = np.minimum(dist, np.hypot(px - t * ab[0], py - t * ab[1]))
    inside &= orientation * (ab[0] * py - ab[1] * px) >= 0
  signed = np.where(inside, -dist, dist) - inflate
  shade = 1.0 - shading * np.clip(1.0 + signed / (2.0 * inflate + 1e-6), 0, 1)
  _composite(canvas, region, 0.5 - signed, colour, shade)


def _cross(u, v):
  return float(u[0] * v[1] - u[1] * v[0])


# --------------------------------------------------------------------------
# Figures.

_SKIN = np.array([[255, 224, 196], [241, 194, 150], [224, 172, 125],
                  [198, 134, 86], [141, 85, 54], [94, 60, 40]], np.float32)
_HAIR = np.array([[20, 15, 10], [60, 40, 25], [110, 75, 40], [200, 170, 110],
                  [120, 120, 120]], np.float32)


def _random_colour(rng, value=(0.25, 0.95), saturation=(0.2, 0.9)):
  """An RGB colour [3] float32 in [0, 255] from a random hue."""
  hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*saturation) * 255,
                    rng.uniform(*value) * 255]]], np.uint8)
  return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


@dataclasses.dataclass(frozen=True)
class _Outfit:
  skin: np.ndarray
  hair: np.ndarray
  shirt: np.ndarray
  trousers: np.ndarray
  shoes: np.ndarray
  long_sleeves: bool
  shorts: bool


def _sample_outfit(rng) -> _Outfit:
  skin = _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.9, 1.05)
  return _Outfit(
      skin=np.minimum(skin, 255),
      hair=_HAIR[rng.integers(len(_HAIR))],
      shirt=_random_colour(rng),
      trousers=_random_colour(rng, value=(0.15, 0.7)),
      shoes=_random_colour(rng, value=(0.05, 0.4), saturation=(0.0, 0.5)),
      long_sleeves=bool(rng.random() < 0.5),
      shorts=bool(rng.random() < 0.25))


def draw_figure(canvas, figure: Figure, outfit: _Outfit):
  """Draws ``figure`` onto ``canvas`` [H, W, 3] float32 in place."""
  j = {name: figure.joints[i] for name, i in _B.items()}
  h = figure.height
  o = outfit
  # Legs, then the hip block, torso, neck, head, arms (arms in front).
  for s in ('l', 'r'):
    hip, knee, ankle = j[f'{s}_hip'], j[f'{s}_knee'], j[f'{s}_ankle']
    shin_colour = o.skin if o.shorts else o.trousers
    foot_dir = ankle - knee
    foot_dir /= max(np.linalg.norm(foot_dir), 1e-6)
    draw_capsule(canvas, ankle, ankle + 0.045 * h * foot_dir, 0.022 * h,
                 0.02 * h, o.shoes)
    draw_capsule(canvas, knee, ankle, 0.036 * h, 0.026 * h, shin_colour)
    draw_capsule(canvas, hip, knee, 0.05 * h, 0.037 * h, o.trousers)
  draw_capsule(canvas, j['l_hip'], j['r_hip'], 0.055 * h, 0.055 * h,
               o.trousers)
  torso = np.stack([j['l_shoulder'], j['l_hip'], j['r_hip'], j['r_shoulder']])
  draw_polygon(canvas, torso, 0.035 * h, o.shirt)
  # Collar and trapezius: raises the shirt's top edge towards the neck.
  draw_capsule(canvas, j['l_shoulder'], j['r_shoulder'], 0.04 * h, 0.04 * h,
               o.shirt, shading=0.15)
  draw_capsule(canvas, j['thorax'], j['upper_neck'], 0.03 * h, 0.027 * h,
               o.skin * 0.92)
  top, neck = j['head_top'], j['upper_neck']
  axis = (neck - top) / max(np.linalg.norm(neck - top), 1e-6)
  half = 0.5 * np.linalg.norm(neck - top)
  if figure.back_facing:
    draw_ellipse(canvas, 0.5 * (top + neck), axis, half, 0.052 * h, o.hair)
  else:
    draw_ellipse(canvas, 0.5 * (top + neck), axis, half, 0.052 * h, o.skin)
    # Hair: a cap over the top third of the head.
    draw_ellipse(canvas, top + 0.3 * half * axis, axis, 0.42 * half,
                 0.05 * h, o.hair, shading=0.1)
    for eye in ('l_eye', 'r_eye'):
      draw_capsule(canvas, j[eye], j[eye], 0.008 * h, 0.008 * h,
                   (30, 25, 25), shading=0.0)
    draw_capsule(canvas, j['nose'], j['nose'] + 0.012 * h * axis, 0.006 * h,
                 0.009 * h, o.skin * 0.78, shading=0.0)
  for s in ('l', 'r'):
    shoulder, elbow = j[f'{s}_shoulder'], j[f'{s}_elbow']
    wrist = j[f'{s}_wrist']
    draw_capsule(canvas, shoulder, elbow, 0.032 * h, 0.027 * h, o.shirt)
    forearm = o.shirt if o.long_sleeves else o.skin
    draw_capsule(canvas, elbow, wrist, 0.026 * h, 0.02 * h, forearm)
    hand_dir = wrist - elbow
    hand_dir /= max(np.linalg.norm(hand_dir), 1e-6)
    draw_capsule(canvas, wrist, wrist + 0.035 * h * hand_dir, 0.021 * h,
                 0.017 * h, o.skin)


def place_figure(pose, height, center, rotation_deg, anchor) -> Figure:
  """Scales ``pose`` (body frame) to ``height`` px, rotates it about ``anchor``
  (body frame) by ``rotation_deg`` counter-clockwise and puts the anchor at
  ``center`` (x, y) pixels."""
  matrix = (geometry.translation(*center)
            @ _rotation(rotation_deg) @ geometry.scaling(height)
            @ geometry.translation(-anchor[0], -anchor[1]))
  return Figure(joints=geometry.transform_points(matrix, pose), height=height,
                back_facing=False)


def _rotation(deg):
  # Counter-clockwise on screen is clockwise in image axes (y down).
  c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
  return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


# --------------------------------------------------------------------------
# Background, clutter and occluders.


def _background(rng, h, w) -> np.ndarray:
  """[H, W, 3] float32: a colour gradient with noise at several scales.

  Built on a coarse grid and upsampled once: the finest scale is 1/24 of the
  image, finer grain comes from `_pixel_noise`.
  """
  c0, c1 = _random_colour(rng, saturation=(0, 0.6)), _random_colour(rng)
  direction = _unit(rng.uniform(0, 360))
  cells = 3
  ramp = np.linspace(-0.5, 0.5, cells, dtype=np.float32)
  ramp = ramp[None, :] * direction[0] + ramp[:, None] * direction[1]
  coarse = 0.5 * (c0 + c1) + (ramp[..., None] * (c1 - c0)).astype(np.float32)
  for amplitude, next_cells in ((45.0, 8), (25.0, 24), (12.0, None)):
    coarse = coarse + amplitude * rng.uniform(0.3, 1.0) * rng.standard_normal(
        (cells, cells, 3), dtype=np.float32)
    if next_cells is not None:
      coarse = cv2.resize(coarse, (next_cells, next_cells),
                          interpolation=cv2.INTER_LINEAR)
      cells = next_cells
  return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


_NOISE_TILES = {}


def _pixel_noise(rng, h, w) -> np.ndarray:
  """[H, W, 3] float32 unit Gaussian sensor noise: a random window of a fixed
  tile (drawing fresh noise per image would cost as much as the rest)."""
  if (h, w) not in _NOISE_TILES:
    _NOISE_TILES[(h, w)] = np.random.default_rng(0).standard_normal(
        (2 * h, 2 * w, 3), dtype=np.float32)
  y, x = rng.integers(0, h + 1), rng.integers(0, w + 1)
  return _NOISE_TILES[(h, w)][y:y + h, x:x + w]


def _draw_shapes(rng, canvas, count):
  """Flat rectangles and ellipses (furniture, windows, posters)."""
  h, w = canvas.shape[:2]
  for _ in range(count):
    colour = tuple(float(c) for c in _random_colour(rng))
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    sx, sy = rng.uniform(0.05, 0.35) * w, rng.uniform(0.05, 0.35) * h
    if rng.random() < 0.5:
      cv2.rectangle(canvas, (int(cx - sx), int(cy - sy)),
                    (int(cx + sx), int(cy + sy)), colour, -1)
    else:
      cv2.ellipse(canvas, (int(cx), int(cy)), (int(sx), int(sy)),
                  rng.uniform(0, 180), 0, 360, colour, -1)


def _draw_strokes(rng, canvas, count, height, skin):
  """Limb-like capsules, sometimes jointed pairs, in skin / clothing colours."""
  h, w = canvas.shape[:2]
  for _ in range(count):
    colour = skin if rng.random() < 0.3 else _random_colour(rng)
    a = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    for _ in range(rng.integers(1, 3)):
      b = a + rng.uniform(0.1, 0.25) * height * _unit(rng.uniform(0, 360))
      radius = rng.uniform(0.02, 0.045) * height
      draw_capsule(canvas, a, b, radius, radius * rng.uniform(0.7, 1.0),
                   colour)
      a = b


def _draw_occluder(rng, canvas, figure: Figure):
  """A flat textured box or blob over a random part of ``figure``."""
  joint = figure.joints[rng.integers(len(BODY_JOINTS))]
  size = rng.uniform(0.12, 0.3) * figure.height
  colour = _random_colour(rng)
  if rng.random() < 0.5:
    lo = joint - size * rng.uniform(0.2, 0.8, 2)
    hi = lo + size * rng.uniform(0.6, 1.2, 2)
    draw_polygon(canvas, [lo, (hi[0], lo[1]), hi, (lo[0], hi[1])], 0.5,
                 colour, shading=0.2)
  else:
    axis = _unit(rng.uniform(0, 360))
    draw_ellipse(canvas, joint + size * rng.uniform(-0.3, 0.3, 2), axis,
                 0.5 * size, 0.5 * size * rng.uniform(0.4, 1.0), colour)


# --------------------------------------------------------------------------
# Scenes.


def _framed_indices(upper_body):
  return [_B[j] for j in (_UPPER_BODY if upper_body else BODY_JOINTS)]


def _framing(pose, upper_body):
  """Body-frame anchor (bounding-box centre) and nominal height of the part
  of ``pose`` that the image frames."""
  framed = pose[_framed_indices(upper_body)]
  lo, hi = framed.min(0), framed.max(0)
  return 0.5 * (lo + hi), (_UPPER_BODY_HEIGHT if upper_body else 1.0)


def render_scene(rng: np.random.Generator, image_size, difficulty: Difficulty,
                 upper_body: bool) -> Scene:
  """Renders one image with an annotated figure, distractors and clutter.

  Args:
    rng: the only source of randomness: a fixed seed gives identical scenes.
    image_size: (H, W) of the image.
    difficulty: ranges and probabilities of the scene's nuisances.
    upper_body: frame the figure from head top to hips (FLIC-style; the legs
      may leave the image) instead of the whole body (MPII-style).

  Returns:
    A Scene: the image [H, W, 3] uint8 and the figures in its pixel frame.
  """
  h, w = (int(v) for v in image_size)
  d = difficulty
  back = rng.random() < d.back_facing_prob
  pose = sample_pose(rng, back)
  anchor, framed_height = _framing(pose, upper_body)
  height = rng.uniform(*d.figure_height) * h / framed_height
  center = (np.array([(w - 1) / 2, (h - 1) / 2])
            + d.center_jitter * rng.uniform(-1, 1, 2) * np.array([w, h]))
  figure = dataclasses.replace(
      place_figure(pose, height, center,
                   rng.uniform(-d.rotation_deg, d.rotation_deg), anchor),
      back_facing=back)
  outfit = _sample_outfit(rng)

  canvas = _background(rng, h, w)
  _draw_shapes(rng, canvas, rng.integers(d.clutter_shapes[0],
                                         d.clutter_shapes[1] + 1))
  _draw_strokes(rng, canvas, rng.integers(d.clutter_strokes[0],
                                          d.clutter_strokes[1] + 1),
                height, outfit.skin)

  distractors, in_front = [], []
  for _ in range(rng.integers(d.num_distractors[0], d.num_distractors[1] + 1)):
    other_back = rng.random() < d.back_facing_prob
    other_pose = sample_pose(rng, other_back)
    other_anchor, _ = _framing(other_pose, upper_body)
    offset = (rng.choice([-1, 1]) * rng.uniform(0.2, 0.6) * height,
              rng.uniform(-0.15, 0.15) * height)
    other = dataclasses.replace(
        place_figure(other_pose, height * rng.uniform(0.8, 1.15),
                     center + offset, rng.uniform(-20, 20), other_anchor),
        back_facing=other_back)
    distractors.append(other)
    in_front.append(rng.random() < 0.3)
  for other, front in zip(distractors, in_front):
    if not front:
      draw_figure(canvas, other, _sample_outfit(rng))
  draw_figure(canvas, figure, outfit)
  for other, front in zip(distractors, in_front):
    if front:
      draw_figure(canvas, other, _sample_outfit(rng))
  if rng.random() < d.occlusion_prob:
    _draw_occluder(rng, canvas, figure)

  canvas += 4.0 * _pixel_noise(rng, h, w)
  image = np.clip(canvas, 0, 255).astype(np.uint8)
  return Scene(image=image, figure=figure, distractors=tuple(distractors))


def visible_in(joints: np.ndarray, image_size) -> np.ndarray:
  """[...] bool: joints [..., 2] inside the image (x in [-0.5, W - 0.5))."""
  h, w = image_size
  x, y = joints[..., 0], joints[..., 1]
  return (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)


def encode_png(image: np.ndarray) -> bytes:
  """PNG bytes of an RGB uint8 image [H, W, 3]."""
  ok, data = cv2.imencode('.png', np.ascontiguousarray(image[..., ::-1]))
  if not ok:
    raise ValueError(f'could not PNG-encode an image of shape {image.shape}, '
                     f'dtype {image.dtype}')
  return data.tobytes()
