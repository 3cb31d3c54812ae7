"""Paper-size FLIC cascade with 4x pooling (paper Tables 1-3, Fig. 9).

Run (GPU): python -m launch.train --config=configs/flic_4x.py --workdir=workdirs/flic_4x
Needs FLIC as configs/flic_8x.py. Paper result (Table 3, PCK@0.05): Head 92.6,
Shoulder 73.0, Elbow 57.1, Wrist 60.4; forward 157.2 ms on a K40 (Table 2).
"""

from configs import flic_8x


def get_config():
  config = flic_8x.get_config()
  config.model.pooling = 4
  config.model.spatial.kernel_file = 'data/spatial/flic_4x.npz'
  return config
