"""The training stages of the paper (Secs. 3.3, 4.2) as a schedule of steps.

  coarse:  the coarse model on E1 (the fine model, if any, is frozen);
  spatial: the spatial model (a cascade's MRF) on E3, the cross-entropy of
           its marginals, over the frozen coarse model's heat-maps; it comes
           before the fine stage, whose windows follow the MRF's argmax;
  fine:    the fine model on E2 with the coarse model frozen;
  joint:   both on E1 + lambda * E2, and the spatial model too when
           ``train.spatial_loss_weight`` > 0 (E1 + lambda E2 + w E3).

``config.train.stage_steps`` gives each stage's length (0 skips it); the
global step runs through them in this order, so any step belongs to exactly
one stage and a run resumed from any checkpoint knows where it is. Every
stage starts from the previous stage's parameters with a fresh optimiser
state and its own learning-rate schedule.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections
import optax

from cascade_jax.model import spatial
from cascade_jax.train import state as state_lib

STAGES = ('coarse', 'spatial', 'fine', 'joint')
# Which parameter subtrees (of a cascade model) each stage trains.
TRAINED_PARTS = {'coarse': ('coarse',), 'spatial': ('spatial',),
                 'fine': ('fine',), 'joint': ('coarse', 'fine')}


@dataclasses.dataclass(frozen=True)
class Stage:
  """Stage ``name`` covers global steps begin + 1 .. end (1-based counts)."""
  name: str
  begin: int
  end: int

  @property
  def steps(self) -> int:
    return self.end - self.begin


def plan(train_config: ml_collections.ConfigDict,
         is_cascade: bool) -> list[Stage]:
  """The non-empty stages of ``train_config.stage_steps``, in order."""
  stage_steps = train_config.stage_steps
  unknown = set(stage_steps.keys()) - set(STAGES)
  if unknown:
    raise ValueError(f'train.stage_steps has unknown stages {sorted(unknown)};'
                     f' known: {STAGES}')
  stages, begin = [], 0
  for name in STAGES:
    steps = int(stage_steps.get(name, 0))
    if steps < 0:
      raise ValueError(f'train.stage_steps.{name} must be >= 0, got {steps}')
    if steps and name != 'coarse' and not is_cascade:
      raise ValueError(f'train.stage_steps.{name}={steps} needs a model with a '
                       "fine part (model.name='cascade'); this model is coarse "
                       'only')
    if steps:
      stages.append(Stage(name, begin, begin + steps))
      begin += steps
  if not stages:
    raise ValueError('train.stage_steps are all 0: nothing to train')
  return stages


def total_steps(stages: list[Stage]) -> int:
  return stages[-1].end


def stage_of(stages: list[Stage], step: int) -> Stage:
  """The stage that produced the state after ``step`` steps (0: the first)."""
  for stage in stages:
    if step <= stage.end:
      return stage
  return stages[-1]


def learning_rate_schedule(config: ml_collections.ConfigDict, steps: int,
                           peak: float | None = None) -> optax.Schedule:
  """Linear warm-up to ``peak`` (default ``learning_rate``), then cosine
  decay to 0 at ``steps``."""
  warmup = min(config.warmup_steps, max(steps - 1, 0))
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=config.learning_rate if peak is None else peak,
      warmup_steps=warmup,
      decay_steps=max(steps, warmup + 1), end_value=0.0)


def make_optimizer(config: ml_collections.ConfigDict, steps: int,
                   peak: float | None = None) -> optax.GradientTransformation:
  """``config.optimizer`` ('adam': AdamW; 'sgd': Nesterov momentum 0.9) with
  the schedule over ``steps`` (peak ``peak`` or ``learning_rate``) and
  optional global-norm clipping."""
  schedule = learning_rate_schedule(config, steps, peak)
  if config.optimizer == 'adam':
    tx = optax.adamw(schedule, weight_decay=config.weight_decay)
  elif config.optimizer == 'sgd':
    tx = optax.chain(optax.add_decayed_weights(config.weight_decay),
                     optax.sgd(schedule, momentum=0.9, nesterov=True))
  else:
    raise ValueError(f"train.optimizer must be 'adam' or 'sgd', got "
                     f'{config.optimizer!r}')
  if config.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
  return tx


def peak_learning_rate(train_config: ml_collections.ConfigDict,
                       stage_name: str) -> float:
  """The peak rate of ``stage_name``: ``spatial_learning_rate`` for the
  spatial stage and ``joint_learning_rate`` for the joint stage when the
  config sets them (non-zero), else ``learning_rate``. The spatial model's
  few, pre-softplus parameters need larger steps than the ConvNets'; the
  joint stage starts from trained parts that a fresh Adam state at the full
  rate would undo (BUILD_NOTES, issue 13)."""
  own = {'spatial': train_config.get('spatial_learning_rate'),
         'joint': train_config.get('joint_learning_rate')}.get(stage_name)
  return own or train_config.learning_rate


def optimizer(train_config: ml_collections.ConfigDict, stage: Stage,
              params) -> optax.GradientTransformation:
  """The config's optimiser over ``stage``'s steps at its
  ``peak_learning_rate``, frozen where the stage does not train and on the
  spatial model's ``DECIDED_PARAMS`` (optax.set_to_zero: no update, no
  optimiser state)."""
  peak = peak_learning_rate(train_config, stage.name)
  tx = make_optimizer(train_config, stage.steps, peak)
  if not isinstance(params, dict) or 'fine' not in params:
    return tx  # A coarse-only model: everything trains in its one stage.
  trained = TRAINED_PARTS[stage.name]
  if stage.name == 'joint' and train_config.get('spatial_loss_weight', 0.0):
    trained += ('spatial',)

  def label(path, _):
    decided = (path[0].key == 'spatial'
               and path[-1].key in spatial.DECIDED_PARAMS)
    return 'train' if path[0].key in trained and not decided else 'freeze'

  labels = jax.tree_util.tree_map_with_path(label, params)
  return optax.multi_transform({'train': tx, 'freeze': optax.set_to_zero()},
                               labels)


def enter(state: state_lib.TrainState, train_config, stage: Stage):
  """``state`` with ``stage``'s optimiser and a fresh optimiser state."""
  tx = optimizer(train_config, stage, state.params)
  return state.replace(tx=tx, opt_state=tx.init(state.params))
