"""TFDS builder of LSP and LSP-extended (lsp.py)."""

from cascade_jax.data.lsp.lsp import build
from cascade_jax.data.lsp.lsp import LspConfig
from cascade_jax.data.lsp.lsp import LspPose
from cascade_jax.data.lsp.lsp import read_joints
