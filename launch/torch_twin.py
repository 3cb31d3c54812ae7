"""PyTorch twin of a config's cascade, for ``launch.benchmark --compare=torch``.

Benchmark-only (issue 16): never imported by the package or the tests; it
needs the 'compare' extra (``pip install -e '.[compare]'``). The networks are
the cascade's (``cascade_jax.model``) written in PyTorch's own idiom (NCHW,
``torch.nn`` layers) with the same layers, widths and parameter count: the
fixed Gaussian pyramid and LCN, three conv banks with ceil-mode max pooling,
nearest merging, SpatialDropout and the 1x1 head; the feature crops around
the coarse argmax, the Siamese fine branch (7x7 convs per resolution,
bilinear upsampling, window alignment, 1x1), with ``model.fine_heatmap_input``
the bank on each joint's window of its own coarse heat-map (and, with
``model.fine_other_joints_input``, of the other joints' maximum), and the
unshared per-joint 1x1.
The training steps are the three stages' (AdamW; the coarse model frozen
and without dropout in the fine stage; E1 + lambda * E2 in the joint stage),
timed on a resident batch in turns with ``benchmark.train``'s.
"""

from __future__ import annotations

import time

import ml_collections
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from cascade_jax.data import datasets
from cascade_jax.model import crop
from cascade_jax.model import fine
from cascade_jax.model import layers

# layers.gaussian_pyramid's binomial taps.
_PYRAMID_TAPS = (1.0, 3.0, 3.0, 1.0)
_LCN_EPSILON = 1e-4


def _depthwise(taps: np.ndarray, channels: int) -> torch.Tensor:
  kernel = torch.tensor(np.outer(taps, taps), dtype=torch.float32)
  return kernel.expand(channels, 1, *kernel.shape).contiguous()


class Preprocess(nn.Module):
  """Gaussian pyramid (edge-replicated, stride 2) and LCN of every level."""

  def __init__(self, num_levels: int, lcn_kernel_size: int):
    super().__init__()
    self.num_levels = num_levels
    taps = np.asarray(_PYRAMID_TAPS) / sum(_PYRAMID_TAPS)
    self.register_buffer('pyramid', _depthwise(taps, 3))
    self.register_buffer(
        'lcn', _depthwise(layers.gaussian_kernel_1d(lcn_kernel_size), 1))

  def _local_average(self, x, coverage):
    pad = self.lcn.shape[-1] // 2
    return F.conv2d(x.mean(1, keepdim=True), self.lcn, padding=pad) / coverage

  def forward(self, images):
    levels = [images]
    for _ in range(self.num_levels - 1):
      padded = F.pad(levels[-1], (1, 1, 1, 1), mode='replicate')
      levels.append(F.conv2d(padded, self.pyramid, stride=2, groups=3))
    normalized = []
    for x in levels:
      ones = torch.ones_like(x[:1, :1])
      coverage = F.conv2d(ones, self.lcn, padding=self.lcn.shape[-1] // 2)
      centred = x - self._local_average(x, coverage)
      local_std = self._local_average(centred.square(), coverage).sqrt()
      image_std = local_std.mean(dim=(1, 2, 3), keepdim=True)
      normalized.append(centred / local_std.maximum(image_std).clamp_min(
          _LCN_EPSILON))
    return normalized


class Bank(nn.Module):
  """conv5x5, pool, conv5x5, pool, conv5x5, [pool], conv9x9, [pool]."""

  def __init__(self, in_channels: int, widths, pooling: int):
    super().__init__()
    c1, c2, c3, c4 = widths
    self.pooling = pooling
    self.conv1 = nn.Conv2d(in_channels, c1, 5, padding=2)
    self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
    self.conv3 = nn.Conv2d(c2, c3, 5, padding=2)
    self.conv4 = nn.Conv2d(c3, c4, 9, padding=4)

  def forward(self, x):
    pool = lambda y: F.max_pool2d(y, 2, 2, ceil_mode=True)
    conv1 = F.relu(self.conv1(x))
    conv2 = F.relu(self.conv2(pool(conv1)))
    x = F.relu(self.conv3(pool(conv2)))
    if self.pooling >= 8:
      x = pool(x)
    x = F.relu(self.conv4(x))
    if self.pooling == 16:
      x = pool(x)
    return x, conv1, conv2


class Coarse(nn.Module):
  """The multi-resolution coarse model (``coarse.CoarseHeatmapModel``)."""

  def __init__(self, model_config, num_joints: int, num_levels: int = 3):
    super().__init__()
    self.pooling = model_config.pooling
    self.preprocess = Preprocess(num_levels, 9)
    self.banks = nn.ModuleList(
        Bank(3, model_config.bank_widths, self.pooling)
        for _ in range(num_levels))
    self.dropout = nn.Dropout2d(model_config.dropout_rate)
    widths = (model_config.bank_widths[-1], *model_config.head_widths)
    self.head = nn.ModuleList(nn.Conv2d(a, b, 1)
                              for a, b in zip(widths[:-1], widths[1:]))
    self.output = nn.Conv2d(widths[-1], num_joints, 1)

  def forward(self, images):
    height, width = (n // self.pooling for n in images.shape[2:])
    merged, features = 0.0, []
    for level, (bank, x) in enumerate(zip(self.banks,
                                          self.preprocess(images))):
      out, conv1, conv2 = bank(x)
      features.append((conv1, conv2))
      out = out.repeat_interleave(2**level, 2).repeat_interleave(2**level, 3)
      merged = merged + out[:, :, :height, :width]
    x = self.dropout(merged)
    for conv in self.head:
      x = F.relu(conv(x))
    return self.output(x), features


def _windows(maps, starts, size: int):
  """[B, C, h, w] maps, [B, J, 2] (x, y) starts -> [B * J, C, size, size]."""
  steps = torch.arange(size)
  rows = (starts[..., 1, None] + steps)[:, :, :, None]
  cols = (starts[..., 0, None] + steps)[:, :, None, :]
  batch = torch.arange(maps.shape[0])[:, None, None, None]
  windows = maps.permute(0, 2, 3, 1)[batch, rows, cols]  # [B, J, n, n, C]
  return windows.flatten(0, 1).permute(0, 3, 1, 2)


def _crop(maps, origins, context: int, stride: int):
  """``crop.crop_windows``: [B, C, h, w] maps at ``stride``, [B, J, 2]
  origins -> [B * J, C, n, n], zero outside the map."""
  pad = -(-context // (2 * stride)) + 2
  return _windows(F.pad(maps, (pad, pad, pad, pad)),
                  torch.div(origins, stride, rounding_mode='floor') + pad,
                  crop.window_cells(context, stride))


def crop_features(features, centres, context: int):
  """``crop.crop_features``: per resolution r, [B * J, C_r, n_r, n_r]."""
  height, width = features[0][0].shape[2:]
  upper = torch.tensor([width - 1.0, height - 1.0])
  origins = torch.floor(centres.minimum(upper).clamp_min(0.0)
                        - (context - 1) / 2 + 0.5).long()
  by_resolution = [[] for _ in range(len(features) + 1)]
  for level, pair in enumerate(features):
    for offset, maps in enumerate(pair):
      by_resolution[level + offset].append(
          _crop(maps, origins, context, 2**(level + offset)))
  return [torch.cat(group, 1) for group in by_resolution], origins


class Fine(nn.Module):
  """The Siamese fine model with its unshared per-joint 1x1
  (``fine.FineHeatmapModel``)."""

  def __init__(self, model_config, num_joints: int, crop_channels,
               hint_stride: int = 0, hint_channels: int = 1):
    super().__init__()
    widths = model_config.fine_bank_widths
    self.hint_stride = hint_stride
    self.banks = nn.ModuleList()
    # The hint bank (the joint's own coarse map, and the others' maximum)
    # comes last.
    for channels in tuple(crop_channels) + (
        (hint_channels,) if hint_stride else ()):
      convs = []
      for width in widths:
        convs.append(nn.Conv2d(channels, width, 7, padding=3))
        channels = width
      self.banks.append(nn.ModuleList(convs))
    self.hidden = nn.Conv2d(widths[-1], model_config.fine_hidden_width, 1)
    self.joint_kernel = nn.Parameter(
        torch.randn(num_joints, model_config.fine_hidden_width) * 0.1)
    self.joint_bias = nn.Parameter(torch.zeros(num_joints))

  def forward(self, crops, origins, context: int, hint=None):
    batch, num_joints = origins.shape[:2]
    strides = [2**bank for bank in range(len(crops))]
    if hint is not None:
      crops, strides = list(crops) + [hint], strides + [self.hint_stride]
    merged = 0.0
    for convs, x, stride in zip(self.banks, crops, strides):
      for conv in convs:
        x = F.relu(conv(x))
      if stride > 1:
        x = F.interpolate(x, scale_factor=stride, mode='bilinear')
        offsets = (origins % stride).flatten(0, 1)[:, None]  # [BJ, 1, 2]
        x = _windows(x, offsets, context)
      merged = merged + x
    hidden = F.relu(self.hidden(merged))
    hidden = hidden.unflatten(0, (batch, num_joints))  # [B, J, c, n, n]
    return (torch.einsum('bjcyx,jc->bjyx', hidden, self.joint_kernel)
            + self.joint_bias[None, :, None, None])


def joint_windows(maps, origins, context: int, stride: int):
  """``crop.joint_windows``: joint j's window of its own map, from [B, J,
  h, w] maps at ``stride`` -> [B * J, 1, n, n]."""
  windows = _crop(maps, origins, context, stride)  # [B * J, J, n, n]
  own = windows.unflatten(0, origins.shape[:2]).diagonal(dim1=1, dim2=2)
  return own.permute(0, 3, 1, 2).flatten(0, 1)[:, None]


def other_joints_maximum(maps):
  """``cascade.other_joints_maximum`` on [B, J, h, w] maps."""
  own = torch.eye(maps.shape[1], dtype=torch.bool)[None, :, :, None, None]
  return maps[:, None].masked_fill(own, float('-inf')).amax(2)


def _loss(predicted, target, weights):
  """``losses.heatmap_loss`` in NCHW."""
  return (weights * (predicted - target).square().sum((2, 3))).mean()


def _fine_targets(joints, origins, context: int):
  local = (joints - origins).float()
  grid = torch.arange(context, dtype=torch.float32)
  dx = grid[None, None, None, :] - local[..., 0, None, None]
  dy = grid[None, None, :, None] - local[..., 1, None, None]
  return torch.exp(-(dx**2 + dy**2) / (2 * fine.FINE_SIGMA**2))


class Cascade(nn.Module):
  """Coarse model, crop at the coarse argmax, fine model."""

  def __init__(self, model_config, num_joints: int):
    super().__init__()
    self.context = model_config.context
    self.coarse = Coarse(model_config, num_joints)
    self.heatmap_input = model_config.get('fine_heatmap_input', False)
    self.other_joints_input = model_config.get('fine_other_joints_input',
                                               False)
    c1, c2 = model_config.bank_widths[:2]
    self.fine = Fine(model_config, num_joints, (c1, c2 + c1, c2 + c1, c2),
                     self.coarse.pooling if self.heatmap_input else 0,
                     2 if self.other_joints_input else 1)

  def forward(self, images, frozen_coarse: bool):
    with torch.set_grad_enabled(not frozen_coarse and torch.is_grad_enabled()):
      coarse_maps, features = self.coarse(images)
    batch, num_joints, _, width = coarse_maps.shape
    stride = self.coarse.pooling
    best = coarse_maps.detach().flatten(2).argmax(-1)  # [B, J]
    centres = torch.stack([best % width, best // width], -1) * stride + (
        stride - 1) / 2
    crops, origins = crop_features(features, centres, self.context)
    hint = None
    if self.heatmap_input:
      maps = coarse_maps.detach()
      hint = joint_windows(maps, origins, self.context, stride)
      if self.other_joints_input:
        hint = torch.cat([hint, joint_windows(
            other_joints_maximum(maps), origins, self.context, stride)], 1)
    return (coarse_maps, self.fine(crops, origins, self.context, hint),
            origins)


def parameter_count(module: nn.Module) -> int:
  return sum(p.numel() for p in module.parameters())


def stepper(config: ml_collections.ConfigDict, batch_size=None,
            seed: int = 0):
  """The twin's training steps, for ``benchmark.run(twin=...)``: a function
  of a stage name that returns (timer, entry). ``timer(n)`` runs n steps of
  that stage on a resident random batch and returns the seconds of each;
  entry has 'stage', 'batch_size', 'parameters' (those the stage trains),
  'threads' and 'torch_version'."""
  torch.manual_seed(seed)
  num_joints = datasets.joint_set(config.data).num_joints
  batch_size = batch_size or config.train.batch_size
  width, height = config.data.input_size
  stride = config.model.pooling
  model = Cascade(config.model, num_joints)
  images = torch.rand(batch_size, 3, height, width)
  targets = torch.rand(batch_size, num_joints, height // stride,
                       width // stride)
  joints = torch.rand(batch_size, num_joints, 2) * torch.tensor(
      [width - 1.0, height - 1.0])
  weights = torch.ones(batch_size, num_joints)

  def stage(name: str):
    frozen = name == 'fine'
    parts = (model.fine if frozen else model.coarse if name == 'coarse'
             else model)
    optimizer = torch.optim.AdamW(parts.parameters(), lr=1e-3,
                                  weight_decay=config.train.weight_decay)

    def step():
      optimizer.zero_grad(set_to_none=True)
      if name == 'coarse':
        loss = _loss(model.coarse(images)[0], targets, weights)
      else:
        coarse_maps, fine_maps, origins = model(images, frozen)
        e2 = _loss(fine_maps, _fine_targets(joints, origins, model.context),
                   weights)
        loss = e2 if frozen else (_loss(coarse_maps, targets, weights)
                                  + config.train.fine_loss_weight * e2)
      loss.backward()
      optimizer.step()

    def timer(count: int) -> list[float]:
      model.train()
      model.coarse.train(not frozen)
      seconds = []
      for _ in range(count):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
      return seconds

    return timer, {'stage': name, 'batch_size': batch_size,
                   'parameters': parameter_count(parts),
                   'threads': torch.get_num_threads(),
                   'torch_version': torch.__version__}

  return stage
