"""State-dict key conversions between scGPT layouts."""

from __future__ import annotations

import re

from torch import Tensor

__all__ = ["remap_scgpt_state_dict"]

_RULES = (
    # PyTorch nn.MultiheadAttention layout -> fused Wqkv
    (re.compile(r"(self_attn)\.in_proj_weight$"), r"\1.Wqkv.weight"),
    (re.compile(r"(self_attn)\.in_proj_bias$"), r"\1.Wqkv.bias"),
    # flash-attn 2 wrapper layout
    (re.compile(r"self_attn\._impl\."), "self_attn."),
    # DataParallel / DistributedDataParallel prefixes
    (re.compile(r"^module\."), ""),
)


def remap_scgpt_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename the keys of any published scGPT state dict to this package's layout.

    Handles the flash-attention layout (``self_attn.Wqkv``, unchanged), the PyTorch
    ``nn.MultiheadAttention`` layout (``self_attn.in_proj_weight``), the flash-attn 2
    wrapper (``self_attn._impl.``) and ``module.`` prefixes.
    """
    out = {}
    for key, value in state.items():
        for pattern, repl in _RULES:
            key = pattern.sub(repl, key)
        out[key] = value
    return out
