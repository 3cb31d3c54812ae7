"""Hand-computed scoring fixtures: people whose expected PCK, PCKh and
official FLIC figures are worked out in the docstrings, so that a swapped
torso pair, a wrong normaliser or a kept unlabelled torso changes them.

Each returns {'coarse': pred, 'gt', 'visible'} ([N, J, 2] / [N, J]) like
`evaluate.predict_split` (MPII: and 'head_boxes').
"""

import numpy as np

from cascade_jax import joint_sets

FLIC = joint_sets.FLIC
MPII = joint_sets.MPII


def flic_people() -> dict:
  """Three FLIC people; r = 0.05 of the torso.

  A faces the camera: torso ||lsho - rhip|| = ||(60, -80)|| = 100 (5 px at
    0.05), the other diagonal ||rsho - lhip|| = ||(-50, -80)|| = 94.3
    (4.72 px). Predicted l_wrist 4.8 px off (correct only with the right
    diagonal), nose 6 px off (a miss at 0.05, correct at 0.2).
  B faces away, labelled person-centric (its left arm on the image left):
    torso 100 as labelled; the official scorer swaps its arms (observer-
    centric), which makes its torso ||(160, 100) - (160, 180)|| = 80 (4 px).
    The model predicts its labels, l_elbow 4.5 px off: correct against the
    raw labels, a miss (r_elbow after the swap) for the official scorer.
  C has no labelled r_hip, stored as (0, 0): ||lsho - (0, 0)|| = 188.7
    would make its 8 px errors correct; C is left out instead.
  """
  a = {'l_shoulder': (160, 100), 'l_elbow': (170, 150),
       'l_wrist': (175, 200), 'r_shoulder': (100, 100), 'r_elbow': (90, 150),
       'r_wrist': (85, 200), 'l_hip': (150, 180), 'r_hip': (100, 180),
       'l_eye': (135, 60), 'r_eye': (125, 60), 'nose': (130, 70)}
  b = dict(a, l_shoulder=(100, 100), l_elbow=(90, 150), l_wrist=(85, 200),
           r_shoulder=(160, 100), r_elbow=(170, 150), r_wrist=(175, 200),
           l_hip=(110, 180), r_hip=(160, 180))
  c = dict(a, r_hip=(0, 0))
  gt = np.array([[p[j] for j in FLIC.joints] for p in (a, b, c)], float)
  visible = np.ones((3, 11), bool)
  visible[2, FLIC.index('r_hip')] = False
  pred = gt.copy()
  pred[0, FLIC.index('l_wrist'), 0] += 4.8
  pred[0, FLIC.index('nose'), 0] += 6.0
  pred[1, FLIC.index('l_elbow'), 0] += 4.5
  pred[2, :, 0] += 8.0
  return {'coarse': pred, 'gt': gt, 'visible': visible}


def mpii_people() -> dict:
  """Two MPII people, head boxes 30 x 40 (PCKh@0.5: 0.5 * 0.6 * 50 = 15 px).

  P: torso ||lsho - rhip|| = ||(60, -80)|| = 100 (5 px at 0.05, 20 at 0.2),
    ||rsho - lhip|| = ||(-50, -80)|| = 94.3. Predicted head_top 12 px off,
    l_wrist 16 px off, r_wrist 4.8 px off.
  Q: r_hip unlabelled, stored as (0, 0): left out of torso PCK. Predicted
    upper_neck 20 px off, l_elbow 10 px off.
  """
  gt = np.zeros((2, 16, 2))
  rng = np.random.default_rng(0)
  gt[:] = rng.uniform(100, 300, size=(1, 16, 2))
  for n in range(2):
    gt[n, MPII.index('l_shoulder')] = (200, 100)
    gt[n, MPII.index('r_hip')] = (140, 180)
    gt[n, MPII.index('r_shoulder')] = (140, 100)
    gt[n, MPII.index('l_hip')] = (190, 180)
  gt[1, MPII.index('r_hip')] = (0, 0)
  visible = np.ones((2, 16), bool)
  visible[1, MPII.index('r_hip')] = False
  pred = gt.copy()
  pred[0, MPII.index('head_top'), 0] += 12.0
  pred[0, MPII.index('l_wrist'), 0] += 16.0
  pred[0, MPII.index('r_wrist'), 0] += 4.8
  pred[1, MPII.index('upper_neck'), 0] += 20.0
  pred[1, MPII.index('l_elbow'), 0] += 10.0
  boxes = np.array([[[50.0, 60.0], [80.0, 100.0]]] * 2)
  return {'coarse': pred, 'gt': gt, 'visible': visible, 'head_boxes': boxes}
