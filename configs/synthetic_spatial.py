"""CPU: the MRF spatial model added to a trained synthetic cascade.

Run, after configs/synthetic_cascade.py has trained into workdirs/cascade:
  python -m launch.spatial_kernels --config=configs/synthetic_spatial.py
  python -m launch.train --config=configs/synthetic_spatial.py --workdir=workdirs/spatial
  python -m launch.eval --config=configs/synthetic_spatial.py --workdir=workdirs/spatial \
      --config.data.num_distractors='(2, 2)' --config.data.num_train=16

The first command writes the kernels (offset histograms of the training
split); the second takes the cascade's parameters (train.init_from) and
trains only the spatial stage, on the frozen coarse model's heat-maps (about
a minute); the evaluation scores the coarse argmax, the MRF's argmax, the
fine model at the coarse argmax and at the MRF's (the full pipeline), here on
500 test scenes with two other people each. All four stages from scratch:
--config.train.init_from='' and the synthetic_cascade stage lengths. Cost and
results: BUILD_NOTES.md (spatial model section).
"""

from cascade_jax.model import spatial
from configs import synthetic_cascade


def get_config():
  config = synthetic_cascade.get_config()
  # Other people per scene, (min, max); the builder's default is (0, 2).
  config.data.num_distractors = (0, 2)
  config.model.spatial = spatial.default_config(
      kernel_file='data/spatial/synthetic_flic_96x96_8x.npz',
      torso_key='torso_center')
  config.train.init_from = 'workdirs/cascade'  # a workdir to start from
  config.train.stage_steps.coarse = 0
  config.train.stage_steps.fine = 0
  config.train.stage_steps.joint = 0
  config.train.stage_steps.spatial = 600
  # Peak Adam rate for the kernels and biases (pre-softplus) in the spatial
  # stage: at the ConvNets' 2e-3 the MRF is still worse than the plain
  # argmax after 300 steps (BUILD_NOTES.md).
  config.train.spatial_learning_rate = 5e-2
  config.train.spatial_loss_weight = 0.0   # > 0: also trained in 'joint'
  # '' : the MRF answers for every joint. workdirs/cascade trained on the
  # whole training split, so no image is held out for the per-joint choice
  # that the FLIC and MPII configs make (train/spatial_choice.py).
  config.train.spatial_choice_split = ''
  config.train.spatial_choice_level = 0.1  # when a split is given
  return config
