"""One process of tests/train/test_distributed.py.

  python -m tests.train.distributed_worker OUT DATA_DIR PARTS \
      [COORDINATOR NUM_PROCESSES PROCESS_ID]

Joins the other processes when given a coordinator (alone otherwise), then
does the PARTS named (comma-separated), in this order:
  loop:      runs the real training loop (grain global batches, each process
             reading its slices) on tiny synthetic data (in DATA_DIR, built
             beforehand) in OUT/run, shared by the processes; parameters to
             OUT/loop_<process>.npz. Then runs it again, which restores the
             last checkpoint, to OUT/restored_<process>.npz.
  init_from: reads the parameters of OUT/run and of OUT/alone_run (a
             checkpoint that one process wrote) as train.init_from does, to
             OUT/init_from_{run,alone_run}_<process>.npz.
  resume:    runs the loop in OUT/resumed (a copy of a run, made by the test,
             with its last checkpoint removed) to OUT/resumed_<process>.npz.
The device count comes from XLA_FLAGS, set by the test.
"""

import os
import sys

from absl import flags
from absl import logging
from flax import traverse_util
import jax
import numpy as np

from cascade_jax.model import build
from cascade_jax.train import checkpoint
from cascade_jax.train import distributed
from cascade_jax.train import loop
from cascade_jax.train import stages
from cascade_jax.train import state as state_lib
from configs import synthetic

GLOBAL_BATCH = 8
STEPS = 3  # 16 images in global batches of 8: into a second epoch
NUM_JOINTS = 11  # FLIC's, of the synthetic data


def tiny_config(data_dir: str):
  """A coarse model small enough to compile in seconds, on 16 images."""
  config = synthetic.get_config()
  config.data.data_dir = data_dir
  config.data.image_size = (64, 64)
  config.data.input_size = (64, 64)
  config.data.num_train = 16
  config.data.num_test = 5
  config.data.worker_count = 0
  config.model.name = 'coarse'
  config.model.bank_widths = (4, 4, 4, 8)
  config.model.head_widths = (8, 8)
  config.model.dropout_rate = 0.5  # masks drawn per global device
  config.train.stage_steps.update(coarse=STEPS, fine=0, joint=0)
  config.train.warmup_steps = 1  # full-size steps: the runs move apart
  config.train.batch_size = GLOBAL_BATCH
  config.train.log_every = 1
  config.train.checkpoint_every = 1
  config.train.eval_every = 2
  config.eval.batch_size = 4
  return config


def initial_state(config):
  """The tiny coarse model's state before training, in its coarse stage."""
  model = build.build_model(config.model, NUM_JOINTS, None)
  state = state_lib.create_train_state(model, (1, 64, 64, 3),
                                       jax.random.PRNGKey(0))
  schedule = stages.plan(config.train, is_cascade=False)
  return stages.enter(state, config.train, schedule[0])


def save(path: str, params) -> None:
  flat = traverse_util.flatten_dict(jax.device_get(params), sep='/')
  np.savez(path, **flat)


def main(out_dir: str, data_dir: str, parts: str, *cluster: str) -> None:
  flags.FLAGS.mark_as_parsed()  # grain and absl logging expect parsed flags
  logging.set_verbosity(logging.INFO)
  if cluster:
    address, count, index = cluster
    distributed.initialize('on', address, int(count), int(index))
  else:
    distributed.initialize('off')
  config = tiny_config(data_dir)
  process = jax.process_index()
  parts = parts.split(',')
  if 'loop' in parts:
    run = os.path.join(out_dir, 'run')
    trained = loop.train_and_evaluate(config, run)
    save(os.path.join(out_dir, f'loop_{process}.npz'), trained.params)
    # The same command again restores the last checkpoint, with nothing
    # left to train.
    restored = loop.train_and_evaluate(config, run)
    save(os.path.join(out_dir, f'restored_{process}.npz'), restored.params)
  if 'init_from' in parts:
    # train.init_from: parameters of a run of several processes, and of one.
    for name in ('run', 'alone_run'):
      params = checkpoint.restore_params(os.path.join(out_dir, name))
      save(os.path.join(out_dir, f'init_from_{name}_{process}.npz'), params)
  if 'resume' in parts:
    resumed = loop.train_and_evaluate(config, os.path.join(out_dir, 'resumed'))
    save(os.path.join(out_dir, f'resumed_{process}.npz'), resumed.params)


if __name__ == '__main__':
  main(*sys.argv[1:])
