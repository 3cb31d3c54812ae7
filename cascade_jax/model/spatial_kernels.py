"""The spatial model's initial kernels: histograms of relative joint offsets.

For a pair p = (a, v) of `spatial.pairs`, kernel cell (kh // 2 + dy,
kw // 2 + dx) counts the training examples whose joint a lies (dx, dy)
heat-map cells from joint v (the torso for v = J), both labelled, in the
evaluation crop of the example (the geometry the model sees at test time).
Each histogram is blurred by a Gaussian (a few thousand examples spread
over thousands of cells leave holes) and normalised to sum 1.

Files are .npz with 'kernels' [P, kh, kw], 'pairs' [P, 2] (target, source),
'stride' and 'num_examples'; `spatial.load_kernels` reads them.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.ndimage

from cascade_jax import geometry
from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.model import spatial


def crop_positions(source, spec: pipeline.CropSpec, torso_key: str):
  """Joints and torso of every record in its evaluation crop, in input pixels.

  Only the crop geometry is computed: no image is warped (and the real
  datasets' sources leave their JPEGs undecoded).

  Returns:
    (joints [N, J, 2], visible [N, J] labelled and inside the crop,
    torso [N, 2]).
  """
  joints, visible, torso = [], [], []
  for index in range(len(source)):
    record = source[index]
    matrix = pipeline.crop_matrix(record, spec, rotation=0.0, scale=1.0,
                                  flip=False)
    crop_joints = geometry.transform_points(matrix, record['joints'])
    joints.append(crop_joints)
    visible.append(np.asarray(record['visible'], bool)
                   & pipeline.inside(crop_joints, spec.input_size))
    torso.append(geometry.transform_points(matrix, record[torso_key]))
  if not joints:
    raise ValueError('the split is empty: no offsets to count')
  return np.stack(joints), np.stack(visible), np.stack(torso)


def offset_histograms(joints: np.ndarray, visible: np.ndarray,
                      torso: np.ndarray, graph: np.ndarray,
                      kernel_size: tuple[int, int], stride: int,
                      smoothing: float) -> np.ndarray:
  """[P, kh, kw] normalised histograms of joint offsets, one per pair.

  Args:
    joints: [N, J, 2] (x, y) input pixels.
    visible: [N, J] which joints are labelled.
    torso: [N, 2] (x, y) input pixels, always present.
    graph: [P, 2] (target a, source v) pairs; v = J is the torso.
    kernel_size: (kh, kw), odd.
    stride: input pixels per heat-map cell.
    smoothing: sigma of the Gaussian blur in cells (0: none).
  """
  kh, kw = kernel_size
  positions = np.concatenate([joints, torso[:, None]], axis=1) / stride
  labelled = np.concatenate([visible, np.ones_like(visible[:, :1])], axis=1)
  kernels = np.zeros((len(graph), kh, kw))
  for p, (a, v) in enumerate(graph):
    both = labelled[:, a] & labelled[:, v]
    offsets = np.rint(positions[both, a] - positions[both, v]).astype(int)
    cols = offsets[:, 0] + kw // 2
    rows = offsets[:, 1] + kh // 2
    inside = (cols >= 0) & (cols < kw) & (rows >= 0) & (rows < kh)
    np.add.at(kernels[p], (rows[inside], cols[inside]), 1.0)
    if smoothing:
      kernels[p] = scipy.ndimage.gaussian_filter(kernels[p], smoothing,
                                                 mode='constant')
    total = kernels[p].sum()
    if total == 0:
      raise ValueError(f'pair (joint {a}, joint {v}) is never labelled '
                       'together in the split: no offsets to count')
    kernels[p] /= total
  return kernels.astype(np.float32)


def from_training_split(config) -> tuple[np.ndarray, np.ndarray, int]:
  """(kernels [P, kh, kw], pairs [P, 2], examples counted) of an experiment
  ``config`` with ``config.model.spatial``, from its ``data.train_split``."""
  source, joint_set = datasets.load_split(config.data, config.data.train_split)
  spec = pipeline.crop_spec(config, joint_set)
  joints, visible, torso = crop_positions(source, spec,
                                          config.model.spatial.torso_key)
  graph = spatial.pairs(joint_set.num_joints,
                        [tuple(e) for e in joint_set.edge_indices])
  kernels = offset_histograms(
      joints, visible, torso, graph, spatial.kernel_shape(spec.heatmap_size),
      spec.stride, config.model.spatial.histogram_smoothing)
  return kernels, graph, len(joints)


def save(path: str, kernels: np.ndarray, graph: np.ndarray, stride: int,
         num_examples: int) -> None:
  """Writes the kernels where ``model.spatial.kernel_file`` points."""
  if os.path.dirname(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
  np.savez(path, kernels=kernels, pairs=graph, stride=stride,
           num_examples=num_examples)
