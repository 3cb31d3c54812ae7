"""CPU: the 8x coarse model on synthetic MPII-style people (16 full-body joints).

Run:
  python -m launch.train --config=configs/synthetic_mpii.py --workdir=workdirs/synth_mpii
  python -m launch.eval --config=configs/synthetic_mpii.py --workdir=workdirs/synth_mpii

Needs nothing downloaded. Harder than the demo (whole body, smaller limbs in
the same 128x128 input); expect a lower PCK for the same training time.
"""

from configs import synthetic


def get_config():
  config = synthetic.get_config()
  config.data.builder_config = 'mpii'
  config.data.crop_center = 'person_center'
  config.data.box_scale = 1.25        # whole body plus a margin (MPII's 1.25)
  return config
