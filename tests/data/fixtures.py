"""Tiny FLIC, MPII and LSP files in their original formats, for builder tests.

Annotations are written with scipy.io.savemat in the releases' struct layouts
(1-based Matlab coordinates); images are small JPEGs written with PIL.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import scipy.io
from PIL import Image

SPECIMENS = pathlib.Path(__file__).parents[2].parent / 'shared' / 'specimens'


def write_jpeg(path: os.PathLike | str, height: int = 24, width: int = 32,
               mode: str = 'RGB', seed: int = 0) -> np.ndarray:
  """Writes a random JPEG in ``mode`` ('RGB', 'L', 'CMYK'); returns its RGB pixels."""
  rng = np.random.default_rng(seed)
  pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(pixels).convert(mode).save(path, format='JPEG')
  return pixels


def struct_array(entries: list[dict]) -> np.ndarray:
  """A Matlab 1xN struct array of ``entries`` (dicts with the same keys)."""
  array = np.empty((1, len(entries)),
                   dtype=[(name, object) for name in entries[0]])
  for i, entry in enumerate(entries):
    for name, value in entry.items():
      array[0, i][name] = value
  return array


# ---------------------------------------------------------------- FLIC

FLIC_COLUMNS = (0, 1, 2, 3, 4, 5, 6, 9, 12, 13, 16)


def flic_entry(joints: np.ndarray, name: str, *, train: bool,
               torso_box=(8.0, 6.0, 20.0, 18.0), height: int = 24,
               width: int = 32) -> dict:
  """An examples.mat entry: ``joints`` [11, 2] 1-based, NaN = unlabelled."""
  coords = np.full((2, 29), np.nan)
  coords[:, FLIC_COLUMNS] = np.asarray(joints, float).T
  return {'poselet_hit_idx': np.zeros((1, 0)), 'moviename': name[:-9],
          'coords': coords, 'filepath': name,
          'imgdims': np.array([height, width, 3], np.uint16),
          'currframe': 1.0, 'torsobox': np.array(torso_box, float),
          'istrain': float(train), 'istest': float(not train)}


def flic_joints(seed: int, backward: bool = False) -> np.ndarray:
  """[11, 2] 1-based joints with l_shoulder left of r_shoulder on screen
  when ``backward``, else right of it (FLIC's usual front view)."""
  joints = np.random.default_rng(seed).uniform(2, 20, (11, 2))
  joints[0, 0], joints[3, 0] = (5.0, 15.0) if backward else (15.0, 5.0)
  return joints


def write_flic(folder: os.PathLike | str, entries: list[dict],
               image_modes: dict[str, str] | None = None) -> None:
  """examples.mat and one JPEG per entry (mode by name, default RGB)."""
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  scipy.io.savemat(folder / 'examples.mat',
                   {'examples': struct_array(entries)})
  for k, entry in enumerate(entries):
    height, width = (int(v) for v in entry['imgdims'][:2])
    write_jpeg(folder / 'images' / entry['filepath'], height, width,
               (image_modes or {}).get(entry['filepath'], 'RGB'), seed=k)


def write_flic_dataset(manual_dir: os.PathLike | str) -> list[dict]:
  """FLIC with 3 train and 2 test examples (test 1 faces backwards; test 0
  lacks its nose and is a grayscale JPEG, train 2 is CMYK)."""
  nose_missing = flic_joints(3)
  nose_missing[10] = np.nan
  entries = [flic_entry(flic_joints(0), 'movie-00000001.jpg', train=True),
             flic_entry(flic_joints(1), 'movie-00000002.jpg', train=True),
             flic_entry(flic_joints(2), 'movie-00000003.jpg', train=True,
                        height=30, width=40),
             flic_entry(nose_missing, 'movie-00000004.jpg', train=False),
             flic_entry(flic_joints(4, backward=True), 'movie-00000005.jpg',
                        train=False)]
  write_flic(pathlib.Path(manual_dir) / 'FLIC', entries,
             {'movie-00000004.jpg': 'L', 'movie-00000003.jpg': 'CMYK'})
  return entries


def write_flic_full(manual_dir: os.PathLike | str,
                    indices=(1, 3, 4)) -> list[dict]:
  """FLIC-full with 4 examples and tr_plus_indices (1-based) ``indices``."""
  entries = [flic_entry(flic_joints(10 + k), f'full-0000000{k}.jpg',
                        train=True) for k in range(4)]
  folder = pathlib.Path(manual_dir) / 'FLIC-full'
  write_flic(folder, entries)
  scipy.io.savemat(folder / 'tr_plus_indices.mat', {
      'tr_plus_indices': np.array(indices, np.uint16)[:, None]})
  return entries


# ---------------------------------------------------------------- MPII

def mpii_point(joint: int, x: float, y: float, is_visible) -> dict:
  return {'x': x, 'y': y, 'id': joint, 'is_visible': is_visible}


def mpii_rect(points: list[dict] | None, *, head=(10.0, 4.0, 14.0, 9.0),
              center=(12.0, 14.0), scale: float | None = 0.1) -> dict:
  """An annorect entry; ``points`` None or [] gives annopoints = []; a single
  point is stored as a lone struct, as Matlab does."""
  annopoints = np.zeros((0, 0))
  if points:
    annopoints = {'point': points[0] if len(points) == 1
                  else struct_array(points)}
  return {'x1': head[0], 'y1': head[1], 'x2': head[2], 'y2': head[3],
          'annopoints': annopoints,
          'scale': np.zeros((0, 0)) if scale is None else scale,
          'objpos': ({'x': center[0], 'y': center[1]} if center is not None
                     else np.zeros((0, 0)))}


def mpii_release(images: list[tuple[str, list[dict], bool]]) -> dict:
  """The RELEASE struct of (image name, annorects, img_train) per image.

  One annorect is stored as a lone struct, none as [], several as an array.
  """
  annolist = []
  for name, rects, _ in images:
    if not rects:
      annorect = np.zeros((0, 0))
    elif len(rects) == 1:
      annorect = rects[0]
    else:
      annorect = struct_array(rects)
    annolist.append({'image': {'name': name}, 'annorect': annorect,
                     'frame_sec': np.zeros((0, 0)), 'vidx': np.zeros((0, 0))})
  return {'annolist': struct_array(annolist),
          'img_train': np.array([[float(t) for _, _, t in images]]),
          'version': '12'}


def full_mpii_points(offset: float = 0.0) -> list[dict]:
  """16 points, ids in a shuffled order, is_visible in every stored form."""
  flags = (1, 0, '1', '0', np.zeros((0, 0)))
  return [mpii_point(j, 5.0 + j + offset, 20.0 - j, flags[j % 5])
          for j in (3, 0, 15, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)]


def write_mpii(manual_dir: os.PathLike | str, release: dict,
               image_names: list[str]) -> None:
  """mpii_human_pose_v1_u12_1.mat and a JPEG for each of ``image_names``."""
  manual_dir = pathlib.Path(manual_dir)
  manual_dir.mkdir(parents=True, exist_ok=True)
  scipy.io.savemat(manual_dir / 'mpii_human_pose_v1_u12_1.mat',
                   {'RELEASE': release})
  for k, name in enumerate(image_names):
    write_jpeg(manual_dir / 'images' / name, seed=k)


def mpii_images():
  """Five images: 0 train with 3 persons (one unannotated), 1 train with one
  person of one point, 2 train without people, 3 test with 2 persons that
  have neither annopoints nor head box fields, 4 train with one annotated
  person lacking its scale."""
  return [
      ('a.jpg', [mpii_rect(full_mpii_points()),
                 mpii_rect(full_mpii_points(3.0)[:12], center=(9.0, 11.0),
                           scale=0.2),
                 mpii_rect(None, center=(20.0, 5.0))], True),
      ('b.jpg', [mpii_rect([mpii_point(9, 3.0, 4.0, '')])], True),
      ('c.jpg', [], True),
      ('d.jpg', [{'scale': 0.3, 'objpos': {'x': 7.0, 'y': 8.0}},
                 {'scale': 0.4, 'objpos': {'x': 17.0, 'y': 8.0}}], False),
      ('e.jpg', [mpii_rect(full_mpii_points(), scale=None)], True),
  ]


# ---------------------------------------------------------------- LSP

def lsp_joints(count: int, extended: bool = False, seed: int = 0):
  """joints.mat's array, 1-based: LSP's 3 x 14 x N (row 3: 1 = occluded) or
  LSP-extended's 14 x 3 x N (column 3: 1 = visible)."""
  rng = np.random.default_rng(seed)
  labels = np.concatenate([rng.uniform(1, 20, (count, 14, 2)),
                           rng.integers(0, 2, (count, 14, 1))], axis=-1)
  return np.transpose(labels, (1, 2, 0) if extended else (2, 1, 0))


def write_lsp(folder: os.PathLike | str, joints: np.ndarray,
              digits: int) -> None:
  """joints.mat and images/im<k>.jpg (one tiny JPEG, copied)."""
  folder = pathlib.Path(folder)
  (folder / 'images').mkdir(parents=True, exist_ok=True)
  scipy.io.savemat(folder / 'joints.mat', {'joints': joints})
  write_jpeg(folder / 'images' / f'im{1:0{digits}d}.jpg', 16, 12)
  data = (folder / 'images' / f'im{1:0{digits}d}.jpg').read_bytes()
  for k in range(2, joints.shape[-1] + 1):
    (folder / 'images' / f'im{k:0{digits}d}.jpg').write_bytes(data)
