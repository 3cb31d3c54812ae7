"""FLIC at laptop-CPU size: the paper configs' real-data path, small enough to try.

Run, with FLIC's examples.mat and images/ in MANUAL/FLIC (FLIC.zip unpacked;
or the synthetic export: python -m launch.export_synthetic --format=flic
--out=MANUAL):
  python -m launch.spatial_kernels --config=configs/flic_cpu.py \
      --config.data.manual_dir=MANUAL          # builds the dataset, then the kernels
  python -m launch.train --config=configs/flic_cpu.py --workdir=workdirs/flic_cpu \
      --config.data.manual_dir=MANUAL
  python -m launch.eval --config=configs/flic_cpu.py --workdir=workdirs/flic_cpu \
      --config.data.manual_dir=MANUAL

The same data path as configs/flic_8x.py (the flic_pose builder, the crop
around the torsobox centre with the 4/3 frame-height box, the MRF with the
torso joint, the official FLIC scoring and flic_predictions.mat), at a
quarter of the paper's input (160x120: the 640x480 window of the frame,
downscaled 4x) and the CPU demo's narrow widths (banks 16/16/16/64, head
64/64, fine 16/16 + 32, context 24). Stages: coarse 2500, spatial 1000, fine
400, joint 150 steps at batch 16 (the spatial stage's 1000: where E3 stops
falling at this size). As in flic_8x the first 400 training examples are held
out of every stage, and on them the MRF keeps only the joints whose answer and
whose cascade answer it makes more accurate (train/spatial_choice.py). Cost:
the whole training run took 11m27s and 10m20s in two runs on 2 idle cores
(AMD EPYC Zen 5, coarse stage about 100 img/s); a machine whose coarse stage
runs at 72 img/s would take about 16 min (scaled, not measured). Results on
the synthetic FLIC export (2800 train / 400 test frames, 720x480):
BUILD_NOTES.md, issue 15 section. Far below the paper (Table 3) by design:
it checks the pipeline.
"""

from configs import flic_8x


def get_config():
  config = flic_8x.get_config()
  config.data.input_size = (160, 120)   # (W, H): the paper's 320x240 halved
  config.data.worker_count = 1
  config.model.bank_widths = (16, 16, 16, 64)
  config.model.head_widths = (64, 64)
  config.model.dropout_rate = 0.1
  config.model.fine_bank_widths = (16, 16)
  config.model.fine_hidden_width = 32
  config.model.context = 24
  config.model.spatial.kernel_file = 'data/spatial/flic_cpu.npz'
  config.train.stage_steps.coarse = 2500
  config.train.stage_steps.spatial = 1000
  config.train.stage_steps.fine = 400
  config.train.stage_steps.joint = 150
  config.train.batch_size = 16
  config.train.learning_rate = 2e-3
  config.train.joint_learning_rate = 6e-4
  config.train.warmup_steps = 100
  config.train.log_every = 250
  config.train.checkpoint_every = 500
  config.eval.batch_size = 64
  return config
