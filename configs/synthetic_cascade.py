"""The synthetic cascade benchmark: the 8x cascade of the precision study.

Run:
  python -m launch.train --config=configs/synthetic_cascade.py --workdir=workdirs/cascade
  python -m launch.eval --config=configs/synthetic_cascade.py --workdir=workdirs/cascade
  python -m launch.precision_study --config=configs/synthetic_cascade.py --workdir=workdirs/study

The demo's data and coarse model (configs/synthetic.py) with the schedule
and fine model the paper's precision claim was checked with (BUILD_NOTES.md,
cascade section): coarse 6000 steps, fine 1200 (coarse frozen), joint 600
(E1 + 0.1 E2); fine banks 32/32 and a 1x1 of 64 (the paper's 64/64/128
halved), 24 px context. Other pooling factors: --config.model.pooling=4 or 16.
About 2.5 min on one H100 and roughly an hour on a 2-core CPU.
"""

from configs import synthetic


def get_config():
  config = synthetic.get_config()
  config.model.name = 'cascade'
  config.model.fine_bank_widths = (32, 32)
  config.model.fine_hidden_width = 64
  config.train.stage_steps.coarse = 6000
  config.train.stage_steps.fine = 1200
  config.train.stage_steps.joint = 600
  return config
