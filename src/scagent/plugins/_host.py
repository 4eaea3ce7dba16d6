"""One loaded encoder carrying several plugins, switched by name."""

from __future__ import annotations

import logging
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._settings import settings
from ..models import Encoder, TokenBatch
from ..nn import (
    SlotHead,
    adapter_active,
    adapter_names,
    add_adapter,
    load_adapter_state,
    remove_adapter,
    set_adapter,
)
from ._plugin import Plugin, PluginError

__all__ = ["MAX_ATTACHED", "PluginHost", "host_for"]

logger = logging.getLogger("scagent")

#: Plugins a host keeps attached; attaching one more detaches the least recently used.
MAX_ATTACHED = 12


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
    name ``plugin.key``; its head is kept here. :meth:`predict` activates the plugin's
    adapter only for its own forward pass, so the shared encoder is always left as it
    was (the bare base model for :meth:`~scagent.models.Encoder.embed`). At most
    ``max_attached`` plugins stay attached: attaching another detaches the least
    recently used one.

    Parameters
    ----------
    encoder
        The loaded encoder (shared; its base weights are never modified).
    max_attached
        Plugins kept attached at once.
    """

    def __init__(self, encoder: Encoder, *, max_attached: int = MAX_ATTACHED) -> None:
        if max_attached < 1:
            msg = f"max_attached must be at least 1, got {max_attached}."
            raise ValueError(msg)
        self.encoder = encoder
        self.max_attached = max_attached
        self.plugins: OrderedDict[str, Plugin] = OrderedDict()  # least recently used first
        self.heads = nn.ModuleDict()

    def attach(self, plugin: Plugin) -> str:
        """Add a plugin (a no-op if this version is attached); returns its key."""
        key = plugin.key
        if key in self.plugins:
            self.plugins.move_to_end(key)
            return key
        if plugin.base_sha256 != self.encoder.sha256:
            msg = (
                f"Plugin {plugin.name!r} v{plugin.version} was trained on encoder "
                f"{plugin.base_model!r} (sha256 {plugin.base_sha256[:12]}), not on the loaded "
                f"encoder {self.encoder.name!r} ({self.encoder.sha256[:12]}). Train plugins for "
                "this encoder with `scagent plugins train --model ...`."
            )
            raise PluginError(msg)
        head = SlotHead(self.encoder.dim, len(plugin.labels), plugin.n_slots, plugin.head_hidden)
        try:
            head.load_state_dict(plugin.head_state())
        except (ValueError, RuntimeError) as err:
            msg = f"Plugin {plugin.name!r} v{plugin.version} does not fit its encoder: {err}"
            raise PluginError(msg) from err
        self._install(key, plugin)
        self.plugins[key] = plugin
        self.heads[key] = head.eval()
        while len(self.plugins) > self.max_attached:
            oldest = next(iter(self.plugins))
            logger.debug("Detaching plugin %s (more than %d attached).", oldest, self.max_attached)
            self.detach(oldest)
        return key

    def _install(self, key: str, plugin: Plugin) -> None:
        """Put the plugin's adapter on the encoder (again, if something removed it)."""
        model = self.encoder.model
        add_adapter(model, key, plugin.lora)
        try:
            load_adapter_state(model, key, plugin.lora_state())
        except (ValueError, RuntimeError) as err:
            remove_adapter(model, key)
            msg = f"Plugin {plugin.name!r} v{plugin.version} does not fit its encoder: {err}"
            raise PluginError(msg) from err

    def detach(self, key: str) -> None:
        """Remove a plugin's adapter and head."""
        remove_adapter(self.encoder.model, key)
        self.plugins.pop(key, None)
        if key in self.heads:
            del self.heads[key]

    def detach_all(self) -> None:
        """Remove every plugin: the encoder is the bare base model again."""
        for key in list(self.plugins):
            self.detach(key)

    def use(self, key: str | None) -> None:
        """Activate a plugin's adapter (``None``: the plain encoder) until changed again.

        :meth:`predict` does not need this; it activates its plugin for its own pass.
        """
        if key in self.plugins:
            self.plugins.move_to_end(key)
        set_adapter(self.encoder.model, key)

    def _need(self, key: str) -> None:
        if key not in self.plugins:
            msg = (
                f"Plugin {key!r} is not attached to this host (attached: {list(self.plugins)}; "
                f"at most {self.max_attached} stay attached). Attach it again with "
                "`host.attach(plugin)`."
            )
            raise PluginError(msg)

    def max_len(self, key: str) -> int:
        """Tokens per cell that plugin ``key`` reads."""
        self._need(key)
        return self.plugins[key].max_len or self.encoder.max_len

    def tokens(
        self, X, gene_ids: np.ndarray, max_len: int | None = None
    ) -> tuple[TokenBatch, np.ndarray]:
        """Tokenise rows of ``X`` (log1p CP10k) for this encoder (``max_len``: the encoder's)."""
        return self.encoder.tokenize(X, gene_ids, max_len=max_len)

    @torch.inference_mode()
    def predict(self, key: str, batch: TokenBatch, *, device: str | None = None) -> Prediction:
        """Run plugin ``key`` on a token batch.

        Its adapter is active only during this call: afterwards (also after an error or an
        interrupt) the encoder runs with whatever adapter was active before, normally none.
        """
        self._need(key)
        self.plugins.move_to_end(key)
        device = device or settings.resolved_device()
        model = self.encoder.model
        if key not in adapter_names(model):  # removed behind this host's back
            self._install(key, self.plugins[key])
        model = model.to(device).eval()
        head = self.heads[key].to(device)
        n_used = len(self.plugins[key].labels)
        with (
            adapter_active(model, key),
            torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")),
        ):
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
