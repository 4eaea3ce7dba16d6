"""Tensor-only neural-network modules (no AnnData here)."""

from __future__ import annotations

from ._config import EncoderConfig
from ._head import N_SLOTS, SlotHead
from ._moe_lora import (
    AdaptedLinear,
    MoELoRA,
    MoELoRAConfig,
    active_adapter,
    adapter_active,
    adapter_names,
    adapter_state_dict,
    add_adapter,
    load_adapter_state,
    remove_adapter,
    set_adapter,
)
from ._state_dict import remap_scgpt_state_dict
from ._transformer import SelfAttention, TransformerModel

__all__ = [
    "N_SLOTS",
    "AdaptedLinear",
    "EncoderConfig",
    "MoELoRA",
    "MoELoRAConfig",
    "SelfAttention",
    "SlotHead",
    "TransformerModel",
    "active_adapter",
    "adapter_active",
    "adapter_names",
    "adapter_state_dict",
    "add_adapter",
    "load_adapter_state",
    "remap_scgpt_state_dict",
    "remove_adapter",
    "set_adapter",
]
