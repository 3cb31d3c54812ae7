"""Skeleton overlays and heat-map panels, drawn with OpenCV on RGB uint8 arrays.

Limbs come from the joint set's edges (`joint_sets.JointSet.edges`) and are
coloured by the person's side: an edge between two 'l_' joints in LEFT_COLOUR,
two 'r_' joints in RIGHT_COLOUR, any other in CENTRE_COLOUR. Functions return
new arrays; their inputs are left untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

from cascade_jax import geometry
from cascade_jax import joint_sets as joint_sets_lib

# RGB. Saturated colours that stand out on photographs and are easy to find
# in a drawn image.
LEFT_COLOUR = (0, 255, 255)
RIGHT_COLOUR = (255, 0, 255)
CENTRE_COLOUR = (255, 255, 0)
TRUTH_COLOUR = (255, 255, 255)


def limb_colours(joint_set: joint_sets_lib.JointSet
                 ) -> list[tuple[int, int, int]]:
  """RGB colour of each edge of ``joint_set`` (same order as ``edges``)."""
  colours = []
  for a, b in joint_set.edges:
    if a.startswith('l_') and b.startswith('l_'):
      colours.append(LEFT_COLOUR)
    elif a.startswith('r_') and b.startswith('r_'):
      colours.append(RIGHT_COLOUR)
    else:
      colours.append(CENTRE_COLOUR)
  return colours


def line_width(image_shape) -> int:
  """Limb thickness in pixels: 2 up to 400 px images, then growing with size."""
  return max(2, int(round(min(image_shape[:2]) / 200)))


def draw_skeleton(image: np.ndarray, joints: np.ndarray,
                  joint_set: joint_sets_lib.JointSet,
                  truth: np.ndarray | None = None,
                  truth_visible: np.ndarray | None = None,
                  visible: np.ndarray | None = None) -> np.ndarray:
  """``image`` [H, W, 3] uint8 RGB with the predicted skeleton drawn on it.

  Args:
    image: the original image.
    joints: [J, 2] (x, y) predictions in image pixels.
    joint_set: gives the limbs.
    truth: optional [J, 2] ground truth, drawn as small TRUTH_COLOUR rings.
    truth_visible: optional [J] bool, which ground-truth joints to draw.
    visible: optional [J] bool, which predicted joints to draw (a limb is
      drawn when both its joints are); default all.
  """
  joints = np.asarray(joints, np.float64)
  if joints.shape != (joint_set.num_joints, 2):
    raise ValueError(f'joints must be [J, 2] = ({joint_set.num_joints}, 2) for '
                     f'joint set {joint_set.name!r}, got {joints.shape}')
  canvas = np.ascontiguousarray(image, dtype=np.uint8).copy()
  width = line_width(canvas.shape)
  if truth is not None:
    truth_shown = (np.ones(len(truth), bool) if truth_visible is None
                   else np.asarray(truth_visible, bool))
    for point in np.asarray(truth)[truth_shown]:
      cv2.circle(canvas, _pixel(point), 2 * width, TRUTH_COLOUR, 1,
                 cv2.LINE_AA)
  shown = (np.ones(len(joints), bool) if visible is None
           else np.asarray(visible, bool))
  for (a, b), colour in zip(joint_set.edge_indices, limb_colours(joint_set)):
    if not (shown[a] and shown[b]):
      continue
    cv2.line(canvas, _pixel(joints[a]), _pixel(joints[b]), colour, width,
             cv2.LINE_AA)
  for point in joints[shown]:
    cv2.circle(canvas, _pixel(point), width + 1, CENTRE_COLOUR, -1,
               cv2.LINE_AA)
  return canvas


def enlarge(image: np.ndarray, joints: np.ndarray, min_side: int = 256):
  """A small image and its [..., 2] points scaled up by a whole factor so that
  its shorter side reaches ``min_side`` (nearest neighbour: pixels stay
  visible). Returns (image, points); a factor of 1 returns copies."""
  factor = max(1, int(np.ceil(min_side / min(image.shape[:2]))))
  big = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
  # Source pixel i covers [f*i, f*i + f - 1]: its centre is f*i + (f-1)/2.
  matrix = (geometry.translation((factor - 1) / 2, (factor - 1) / 2)
            @ geometry.scaling(factor))
  return big, geometry.transform_points(matrix, joints)


def heatmap_panel(crop: np.ndarray, heatmaps: np.ndarray,
                  joint_set: joint_sets_lib.JointSet,
                  tile: int = 128) -> np.ndarray:
  """A row of tiles: the model input, then each joint's heat-map over it.

  Args:
    crop: [H, W, 3] uint8 model input.
    heatmaps: [h, w, J] coarse heat-maps of that input.
    joint_set: names the tiles.
    tile: tile height in pixels (width follows the input's aspect).

  Returns:
    uint8 [tile + 16, (J + 1) * tile_width, 3] RGB; heat-maps are clipped to
    [0, 1] (the target range) and coloured with the 'jet' map, blended 60/40
    over the input.
  """
  height, width = crop.shape[:2]
  tile_width = int(round(tile * width / height))
  base = cv2.resize(crop, (tile_width, tile), interpolation=cv2.INTER_LINEAR)
  tiles = [_label(base, 'input')]
  for j, name in enumerate(joint_set.joints):
    heat = np.clip(np.asarray(heatmaps[..., j], np.float32), 0.0, 1.0)
    heat = cv2.resize(heat, (tile_width, tile), interpolation=cv2.INTER_NEAREST)
    colour = cv2.applyColorMap((255 * heat).astype(np.uint8), cv2.COLORMAP_JET)
    blended = (0.6 * colour[..., ::-1] + 0.4 * base).astype(np.uint8)
    tiles.append(_label(blended, name))
  return np.concatenate(tiles, axis=1)


def _label(image: np.ndarray, text: str) -> np.ndarray:
  """``image`` with a 16-pixel black caption strip below it."""
  strip = np.zeros((16,) + image.shape[1:], np.uint8)
  cv2.putText(strip, text[:16], (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
              (255, 255, 255), 1, cv2.LINE_AA)
  return np.concatenate([image, strip], axis=0)


def _pixel(point) -> tuple[int, int]:
  return int(round(float(point[0]))), int(round(float(point[1])))
