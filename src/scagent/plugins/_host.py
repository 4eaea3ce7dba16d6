"""One loaded encoder carrying several plugins, switched by name."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._settings import settings
from ..models import Encoder, TokenBatch, tokenize
from ..nn import SlotHead, add_adapter, load_adapter_state, remove_adapter, set_adapter
from ._plugin import Plugin, PluginError

__all__ = ["PluginHost", "host_for"]


@dataclass
class Prediction:
    """Outputs of one plugin on a set of cells.

    Attributes
    ----------
    embedding
        (cells, d_model) L2-normalised plugin-tuned ``<cls>`` embeddings (F_s).
    probs
        (cells, n_labels) calibrated class probabilities.
    """

    embedding: np.ndarray
    probs: np.ndarray


class PluginHost:
    """Attach plugins to ONE encoder and run them; switching costs no reload.

    Each plugin's MoE-LoRA adapter is added to the encoder's attention layers under the
    name ``plugin.key``; its head is kept here. :meth:`use` only flips the active adapter.

    Parameters
    ----------
    encoder
        The loaded encoder (shared; its base weights are never modified).
    """

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.plugins: dict[str, Plugin] = {}
        self.heads = nn.ModuleDict()

    def attach(self, plugin: Plugin) -> str:
        """Add a plugin (a no-op if this version is attached); returns its key."""
        key = plugin.key
        if key in self.plugins:
            return key
        if plugin.base_sha256 != self.encoder.sha256:
            msg = (
                f"Plugin {plugin.name!r} v{plugin.version} was trained on encoder "
                f"{plugin.base_model!r} (sha256 {plugin.base_sha256[:12]}), not on the loaded "
                f"encoder {self.encoder.name!r} ({self.encoder.sha256[:12]}). Train plugins for "
                "this encoder with `scagent plugins train --model ...`."
            )
            raise PluginError(msg)
        model = self.encoder.model
        add_adapter(model, key, plugin.lora)
        head = SlotHead(self.encoder.dim, len(plugin.labels), plugin.n_slots, plugin.head_hidden)
        try:
            load_adapter_state(model, key, plugin.lora_state())
            head.load_state_dict(plugin.head_state())
        except (ValueError, RuntimeError) as err:
            remove_adapter(model, key)
            msg = f"Plugin {plugin.name!r} v{plugin.version} does not fit its encoder: {err}"
            raise PluginError(msg) from err
        self.plugins[key] = plugin
        self.heads[key] = head.eval()
        return key

    def detach(self, key: str) -> None:
        """Remove a plugin's adapter and head."""
        remove_adapter(self.encoder.model, key)
        self.plugins.pop(key, None)
        if key in self.heads:
            del self.heads[key]

    def use(self, key: str | None) -> None:
        """Activate a plugin's adapter (``None``: the plain encoder)."""
        set_adapter(self.encoder.model, key)

    def max_len(self, key: str) -> int:
        """Tokens per cell that plugin ``key`` reads."""
        return self.plugins[key].max_len or self.encoder.max_len

    def tokens(
        self, X, gene_ids: np.ndarray, max_len: int | None = None
    ) -> tuple[TokenBatch, np.ndarray]:
        """Tokenise rows of ``X`` for this encoder (``max_len``: default the encoder's)."""
        enc = self.encoder
        return tokenize(
            X,
            gene_ids,
            max_len=max_len or enc.max_len,
            n_bins=enc.n_bins,
            cls_id=enc.vocab.cls_id,
            pad_id=enc.vocab.pad_id,
            pad_value=enc.model.cfg.pad_value,
        )

    @torch.inference_mode()
    def predict(self, key: str, batch: TokenBatch, *, device: str | None = None) -> Prediction:
        """Run plugin ``key`` on a token batch."""
        device = device or settings.resolved_device()
        model = self.encoder.model.to(device).eval()
        head = self.heads[key].to(device)
        self.use(key)
        n_used = len(self.plugins[key].labels)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
            cls = model.cell_embedding(
                batch.genes.to(device), batch.values.to(device), batch.padding.to(device)
            )
            logits = head(cls).float()[:, :n_used]
        probs = torch.softmax(logits / self.plugins[key].temperature, dim=-1)
        emb = torch.nn.functional.normalize(cls.float(), dim=-1)
        return Prediction(emb.cpu().numpy(), probs.cpu().numpy())


_HOSTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def host_for(encoder: Encoder) -> PluginHost:
    """The host of a loaded encoder (one per encoder object, kept while it lives)."""
    model = encoder.model
    if model not in _HOSTS:
        _HOSTS[model] = PluginHost(encoder)
    return _HOSTS[model]
