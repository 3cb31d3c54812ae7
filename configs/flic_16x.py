"""Paper-size FLIC cascade with 16x pooling (paper Tables 1-3, Fig. 9).

Run (GPU): python -m launch.train --config=configs/flic_16x.py --workdir=workdirs/flic_16x
Needs FLIC as configs/flic_8x.py. Paper result (Table 3, PCK@0.05): Head 91.6,
Shoulder 73.0, Elbow 47.7, Wrist 45.5; forward 70.6 ms on a K40 (Table 2).
"""

from configs import flic_8x


def get_config():
  config = flic_8x.get_config()
  config.model.pooling = 16
  config.model.spatial.kernel_file = 'data/spatial/flic_16x.npz'
  return config
