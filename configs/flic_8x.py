"""Paper-size FLIC model: 8x coarse heat-map ConvNet at 240x320 (paper Sec. 3.1).

Run (GPU; the FLIC builder arrives with the real-data issue):
  python -m launch.train --config=configs/flic_8x.py --workdir=workdirs/flic_8x

Needs FLIC's examples.mat and images in the manual-download folder. Paper
widths: banks 128/128/128/512, head 256/256; 11 FLIC joints.
"""

from configs import synthetic


def get_config():
  config = synthetic.get_config()
  config.data.name = 'flic'
  config.data.builder_config = 'flic'
  config.data.data_dir = 'data/tfds'
  config.data.input_size = (320, 240)   # (W, H): FLIC frames halved
  config.data.crop_center = 'torso_center'
  # person_scale is the frame height (480): a 4/3 * 480 = 640 px wide box of
  # the full frame around the torso, i.e. the paper's 320x240 half-size window.
  config.data.box_scale = 4 / 3
  config.data.rotation_deg = 20.0
  config.data.scale_range = (0.5, 1.5)  # the paper's augmentation
  config.data.worker_count = 8

  config.model.pooling = 8
  config.model.bank_widths = (128, 128, 128, 512)
  config.model.head_widths = (256, 256)
  config.model.dropout_rate = 0.5

  config.train.stage_steps.coarse = 100_000
  config.train.batch_size = 32
  config.train.learning_rate = 1e-3
  config.train.warmup_steps = 1000
  config.train.log_every = 200
  config.train.checkpoint_every = 2000
  config.eval.batch_size = 32
  return config
