"""Joint sets: names, left/right flip permutation, skeleton edges and torso pair.

The one place that knows what a joint is called. Data, model, MRF, metrics and
drawings all ask this module. Joint names use the prefixes ``l_`` / ``r_`` for
the person's own left and right side; the flip permutation is derived from them,
so a new joint set cannot get it wrong by hand.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class JointSet:
  """An ordered set of joints.

  Attributes:
    name: short identifier ('flic', 'mpii', 'lsp').
    joints: joint names in the dataset's own order.
    edges: skeleton edges as pairs of joint names, for drawing and the MRF.
    torso: the pair whose distance normalises PCK (||l_shoulder - r_hip||,
      the asymmetric pair used by the MPII toolkit's FLIC/LSP scoring).
  """
  name: str
  joints: tuple[str, ...]
  edges: tuple[tuple[str, str], ...]
  torso: tuple[str, str] = ('l_shoulder', 'r_hip')

  def __post_init__(self):
    if len(set(self.joints)) != len(self.joints):
      raise ValueError(f'joint set {self.name!r} repeats a joint: {self.joints}')
    for a, b in self.edges + (self.torso,):
      for joint in (a, b):
        if joint not in self.joints:
          raise ValueError(f'joint set {self.name!r}: unknown joint {joint!r} '
                           f'in an edge; known: {self.joints}')

  @property
  def num_joints(self) -> int:
    return len(self.joints)

  def index(self, joint: str) -> int:
    """Position of a joint by name; raises with the known names if absent."""
    try:
      return self.joints.index(joint)
    except ValueError:
      raise KeyError(f'joint set {self.name!r} has no joint {joint!r}; '
                     f'known: {self.joints}') from None

  @property
  def flip_permutation(self) -> np.ndarray:
    """[J] int: after a horizontal flip, joint k takes the values of joint perm[k]."""
    return np.array([self.index(_mirror_name(j)) for j in self.joints])

  @property
  def edge_indices(self) -> np.ndarray:
    """[E, 2] int: the skeleton edges as joint indices."""
    return np.array([[self.index(a), self.index(b)] for a, b in self.edges],
                    dtype=np.int32).reshape(-1, 2)

  @property
  def torso_indices(self) -> tuple[int, int]:
    return self.index(self.torso[0]), self.index(self.torso[1])


def _mirror_name(joint: str) -> str:
  if joint.startswith('l_'):
    return 'r_' + joint[2:]
  if joint.startswith('r_'):
    return 'l_' + joint[2:]
  return joint


# FLIC's 11 labelled joints, in the order of their columns in examples.mat
# (1-based columns 1-7, 10, 13, 14, 17 of the 29 coords).
FLIC = JointSet(
    name='flic',
    joints=('l_shoulder', 'l_elbow', 'l_wrist', 'r_shoulder', 'r_elbow',
            'r_wrist', 'l_hip', 'r_hip', 'l_eye', 'r_eye', 'nose'),
    edges=(('l_shoulder', 'l_elbow'), ('l_elbow', 'l_wrist'),
           ('r_shoulder', 'r_elbow'), ('r_elbow', 'r_wrist'),
           ('l_shoulder', 'r_shoulder'), ('l_shoulder', 'l_hip'),
           ('r_shoulder', 'r_hip'), ('l_hip', 'r_hip'),
           ('nose', 'l_eye'), ('nose', 'r_eye')),
)

# MPII's 16 joints by official id (0 r ankle ... 15 l wrist).
MPII = JointSet(
    name='mpii',
    joints=('r_ankle', 'r_knee', 'r_hip', 'l_hip', 'l_knee', 'l_ankle',
            'pelvis', 'thorax', 'upper_neck', 'head_top', 'r_wrist',
            'r_elbow', 'r_shoulder', 'l_shoulder', 'l_elbow', 'l_wrist'),
    edges=(('r_ankle', 'r_knee'), ('r_knee', 'r_hip'), ('r_hip', 'pelvis'),
           ('l_hip', 'pelvis'), ('l_knee', 'l_hip'), ('l_ankle', 'l_knee'),
           ('pelvis', 'thorax'), ('thorax', 'upper_neck'),
           ('upper_neck', 'head_top'), ('r_wrist', 'r_elbow'),
           ('r_elbow', 'r_shoulder'), ('r_shoulder', 'thorax'),
           ('l_shoulder', 'thorax'), ('l_elbow', 'l_shoulder'),
           ('l_wrist', 'l_elbow')),
)

# LSP's 14 person-centric joints, in joints.mat order.
LSP = JointSet(
    name='lsp',
    joints=('r_ankle', 'r_knee', 'r_hip', 'l_hip', 'l_knee', 'l_ankle',
            'r_wrist', 'r_elbow', 'r_shoulder', 'l_shoulder', 'l_elbow',
            'l_wrist', 'neck', 'head_top'),
    edges=(('r_ankle', 'r_knee'), ('r_knee', 'r_hip'), ('l_hip', 'l_knee'),
           ('l_knee', 'l_ankle'), ('r_hip', 'l_hip'), ('r_wrist', 'r_elbow'),
           ('r_elbow', 'r_shoulder'), ('l_shoulder', 'l_elbow'),
           ('l_elbow', 'l_wrist'), ('r_shoulder', 'neck'),
           ('l_shoulder', 'neck'), ('r_hip', 'r_shoulder'),
           ('l_hip', 'l_shoulder'), ('neck', 'head_top')),
)

JOINT_SETS = {'flic': FLIC, 'mpii': MPII, 'lsp': LSP}


def get(name: str) -> JointSet:
  """The joint set called ``name``; raises listing the known ones."""
  if name not in JOINT_SETS:
    raise KeyError(f'unknown joint set {name!r}; known: {sorted(JOINT_SETS)}')
  return JOINT_SETS[name]
