"""Paper-size MPII cascade, 8x pooling, scale-normalised (paper Table 4).

Run (GPU):
  python -m launch.spatial_kernels --config=configs/mpii.py  # once
  python -m launch.train --config=configs/mpii.py --workdir=workdirs/mpii
  python -m launch.eval --config=configs/mpii.py --workdir=workdirs/mpii

Needs mpii_human_pose_v1_u12_1.mat and images/ under
data/tfds/downloads/manual (or --config.data.manual_dir). Evaluates on the
standard 2958-person validation split and writes mpii_predictions.mat
(pos_pred_src, 1-based) for other toolkits. The MRF's torso joint is
objpos (the crop centre), a 17th joint for MPII's 16. The unnormalised
setting of Table 4: --config.data.scale_normalised=False. Paper values as
configs/flic_8x.py at 256x256; 16 joints. Paper result (Table 4, PCKh@0.5,
scale normalised): Head 96.1 ... Ankle 64.8, UBody 84.5, Full body 82.0.
"""

from configs import flic_8x


def get_config():
  config = flic_8x.get_config()
  config.data.name = 'mpii'
  config.data.builder_config = 'mpii'
  config.data.input_size = (256, 256)
  config.data.crop_center = 'person_center'
  config.data.box_scale = 1.25          # 200 * scale is the person height
  config.data.scale_normalised = True
  config.data.eval_split = 'validation'  # MPII's test split has no labels
  config.model.spatial.kernel_file = 'data/spatial/mpii_8x.npz'
  config.model.spatial.torso_key = 'person_center'  # objpos
  config.train.stage_steps.coarse = 150_000
  config.train.stage_steps.fine = 40_000
  config.train.stage_steps.joint = 40_000
  return config
