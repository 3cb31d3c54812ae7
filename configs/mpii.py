"""Paper-size MPII model: 8x coarse heat-map ConvNet at 256x256 (paper Sec. 3.1).

Run (GPU; the MPII builder arrives with the real-data issue):
  python -m launch.train --config=configs/mpii.py --workdir=workdirs/mpii

Needs mpii_human_pose_v1_u12_1.mat and the images in the manual-download
folder. Paper widths: banks 128/128/128/512, head 256/256; 16 MPII joints,
scale-normalised person-centred crops.
"""

from configs import flic_8x


def get_config():
  config = flic_8x.get_config()
  config.data.name = 'mpii'
  config.data.builder_config = 'mpii'
  config.data.input_size = (256, 256)
  config.data.crop_center = 'person_center'
  config.data.box_scale = 1.25
  config.data.eval_split = 'validation'  # MPII's test split has no labels
  return config
