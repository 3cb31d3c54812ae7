"""MPII at laptop-CPU size: the paper config's real-data path, small enough to try.

Run, with mpii_human_pose_v1_u12_1.mat and images/ in MANUAL (the release
unpacked; or the synthetic export: python -m launch.export_synthetic
--format=mpii --out=MANUAL --image_size=256,256 --num_train=2800
--num_test=400, and then also --config.data.valid_split_file=MANUAL/valid_annolist.mat):
  python -m launch.spatial_kernels --config=configs/mpii_cpu.py \
      --config.data.manual_dir=MANUAL          # builds the dataset, then the kernels
  python -m launch.train --config=configs/mpii_cpu.py --workdir=workdirs/mpii_cpu \
      --config.data.manual_dir=MANUAL
  python -m launch.eval --config=configs/mpii_cpu.py --workdir=workdirs/mpii_cpu \
      --config.data.manual_dir=MANUAL

The same data path as configs/mpii.py (the mpii_pose builder, scale-normalised
crops around objpos, the MRF with objpos as the torso joint, PCKh@0.5 from the
head boxes under both conventions, mpii_predictions.mat), at half the paper's
input (128x128) and the CPU widths of configs/flic_cpu.py. The real release
has about 28,000 training persons: these schedules see each about once;
the build reads all 24,987 images' headers. The stages as flic_cpu.
"""

from configs import flic_cpu
from configs import mpii


def get_config():
  config = mpii.get_config()
  cpu = flic_cpu.get_config()
  config.data.input_size = (128, 128)
  config.data.worker_count = cpu.data.worker_count
  # '' = the standard validation split (Tompson et al.); for other files in
  # the release's format, a .mat in valid_annolist.mat's layout.
  config.data.valid_split_file = ''
  config.model = cpu.model
  config.model.spatial.kernel_file = 'data/spatial/mpii_cpu.npz'
  config.model.spatial.torso_key = 'person_center'  # objpos
  config.train = cpu.train
  config.eval = cpu.eval
  return config
