"""Tensor-only neural-network modules (no AnnData here)."""

from __future__ import annotations

from ._config import EncoderConfig
from ._state_dict import remap_scgpt_state_dict
from ._transformer import SelfAttention, TransformerModel

__all__ = ["EncoderConfig", "SelfAttention", "TransformerModel", "remap_scgpt_state_dict"]
