"""CPU: the 8x cascade (coarse + Siamese fine model) on synthetic FLIC-style data.

Run:
  python -m launch.train --config=configs/synthetic_cascade.py --workdir=workdirs/cascade
  python -m launch.eval --config=configs/synthetic_cascade.py --workdir=workdirs/cascade

Needs nothing downloaded. The demo's coarse schedule followed by the fine
stage (coarse frozen) and the joint stage (E1 + 0.1 E2); narrow fine model
(banks 16/16, 1x1 32, 24 px context). Other pooling factors:
--config.model.pooling=4 or 16. Cost and results: BUILD_NOTES.md.
"""

from configs import synthetic


def get_config():
  config = synthetic.get_config()
  config.model.name = 'cascade'
  config.train.stage_steps.fine = 600
  config.train.stage_steps.joint = 300
  return config
