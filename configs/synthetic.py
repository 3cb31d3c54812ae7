"""CPU demo: the 8x cascade on the built-in synthetic FLIC-style data.

Run (what `make demo` does; --flip: the flip test, as pose libraries score):
  python -m launch.train --config=configs/synthetic.py --workdir=workdirs/demo
  python -m launch.eval --config=configs/synthetic.py --workdir=workdirs/demo --flip
  python -m launch.report --workdir=workdirs/demo --flip

Needs nothing downloaded: the synthetic dataset is generated on first use.
The three stages of the paper (Sec. 4.2) on a schedule and a narrow fine
model that fit the 12-minute demo budget on a 2-core CPU; the benchmark of
the precision study is configs/synthetic_cascade.py. Cost and result: see
BUILD_NOTES.md (demo section).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = data = ml_collections.ConfigDict()
  data.name = 'synthetic_pose'
  data.builder_config = 'flic'       # 11 FLIC joints, upper body; or 'mpii'
  data.data_dir = 'data/tfds'
  data.image_size = (128, 128)       # (H, W) of the generated images
  data.num_train = 4000
  # 2000 test images: on 500 the wrists' and elbows' cascade-minus-coarse
  # differences have standard errors of 0.7-1.0 points, as large as the
  # margins the demo's table is read for (BUILD_NOTES, issue 13, item 13).
  data.num_test = 2000
  data.dataset_seed = 0              # the generated images; config.seed drives training
  data.train_split = 'train'        # what the stages (and the MRF's kernels) learn from
  data.eval_split = 'test'
  data.input_size = (96, 96)         # (W, H) of the model input
  data.crop_center = 'torso_center'  # record field the crop is centred on
  data.box_scale = 0.65              # crop side = box_scale * person_scale
  data.sigma = 1.5                   # target width in heat-map cells (paper)
  data.rotation_deg = 20.0           # augmentation: rotate in [-20, 20]
  # The paper scales by [0.5, 1.5]; the CPU demo's short schedule learns
  # faster on [0.7, 1.3] (BUILD_NOTES.md, demo section). GPU configs: paper.
  data.scale_range = (0.7, 1.3)      # augmentation: person size multiplier
  data.flip_probability = 0.5
  data.worker_count = 1              # grain worker processes
  # A real dataset's build stops at an unreadable image ('error'), or leaves
  # its example out and lists it in the dataset's metadata.json ('skip').
  data.bad_images = 'error'

  config.model = model = ml_collections.ConfigDict()
  model.name = 'cascade'            # 'coarse', 'cascade' or 'standard_cascade'
  model.pooling = 8                  # 4, 8 or 16
  model.bank_widths = (16, 16, 16, 64)
  model.head_widths = (64, 64)
  model.dropout_rate = 0.1           # SpatialDropout before the first 1x1
  # 'bfloat16': mixed precision (bf16 convs, float32 parameters and losses)
  # for GPU / TPU; on CPU it is no faster (BUILD_NOTES.md, mixed precision).
  model.compute_dtype = 'float32'
  # The fine model, for model.name 'cascade' or 'standard_cascade'.
  model.fine_bank_widths = (16, 16)  # per-bank 7x7 convs (paper: 64, 64)
  model.fine_hidden_width = 32       # shared 1x1 (paper: 128)
  # Crop window in input pixels, even: the paper's 36 px of 320 scaled to the
  # 96-px input is 11; 16 covers the coarse cell and its error, at half the
  # fine model's cost of 24 and no less accurate (BUILD_NOTES, issue 13).
  model.context = 16
  # Each joint's fine instance also gets its own coarse heat-map's window
  # (not in the paper): it knows which joint it looks for, and elbow /
  # wrist confusions fall (BUILD_NOTES, issue 13).
  model.fine_heatmap_input = True
  # And, as a second channel, the other joints' coarse maps (their maximum):
  # it sees where the elbow is when it looks for the wrist; PCK@0.05 rose in
  # each of 8 seeds (BUILD_NOTES, issue 13, item 11).
  model.fine_other_joints_input = True
  model.extra_width = 0              # standard cascade's extra conv; 0 = matched

  config.train = train = ml_collections.ConfigDict()
  # Steps of the three stages (paper Sec. 4.2): coarse on E1, fine on E2 with
  # the coarse model frozen, both on E1 + fine_loss_weight * E2.
  train.stage_steps = ml_collections.ConfigDict(
      {'coarse': 6000, 'fine': 1200, 'joint': 300})
  train.fine_loss_weight = 0.1       # lambda (paper)
  # E2 as paper eq. 2: a window without its joint has an all-zero target.
  # True gives such windows weight 0 instead (measured worse: BUILD_NOTES).
  train.fine_mask_outside = False
  train.batch_size = 16              # global, over all devices and hosts
  train.optimizer = 'adam'
  train.learning_rate = 2e-3
  # Peak rate of the joint stage (0: learning_rate). A fresh Adam state at
  # the full rate undid the trained coarse model (BUILD_NOTES, issue 13).
  train.joint_learning_rate = 6e-4
  train.warmup_steps = 100
  train.weight_decay = 1e-5
  train.grad_clip_norm = 0.0         # 0 disables clipping
  train.log_every = 250
  train.checkpoint_every = 1000
  train.eval_every = 0               # test loss every N steps; 0 = only PCK at the end
  train.keep_checkpoints = 2
  # A step with a non-finite loss or gradient stops training (False), or
  # changes nothing and is counted (True).
  train.skip_nonfinite = False
  train.record_batches = False       # batch hashes to workdir/batches_*.txt
  train.init_from = ''               # a workdir whose parameters to start from
  train.init_parts = ()              # of those, only these parts, e.g. (coarse,)

  config.eval = evaluation = ml_collections.ConfigDict()
  evaluation.batch_size = 64
  evaluation.max_threshold = 0.2     # PCK curves over [0, 0.2]
  evaluation.num_thresholds = 21
  evaluation.subpixel = False
  # How a cascade combines its fine and coarse answers (cascade.locations):
  # 'fine' (the paper: fine argmax), 'threshold' (the coarse location where
  # the fine peak is below fine_min_peak), 'product' (fine map x upsampled
  # coarse map ** coarse_power) or 'cell' (fine argmax within the coarse
  # cell + cell_margin px).
  evaluation.fusion = 'product'     # measured best: BUILD_NOTES, issue 13
  # The power with the best mean PCK@0.2 on 1000 training images, flip test
  # (BUILD_NOTES, issue 13).
  evaluation.coarse_power = 4.0
  evaluation.fine_min_peak = 0.0
  evaluation.cell_margin = 0.0
  return config
