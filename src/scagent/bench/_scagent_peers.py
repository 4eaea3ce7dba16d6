"""scagent itself as benchmark rows: MoE-LoRA plugins, and the frozen encoder + linear head."""

from __future__ import annotations

import logging

import numpy as np
from anndata import AnnData
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._constants import LAYER_LOG1P, OBSM_EMBED
from ..plugins import PluginRegistry, TrainConfig
from ..tl import embed
from ._peers import Peer

__all__ = ["FrozenLinearPeer", "as_model_input", "quick_config"]

logger = logging.getLogger("scagent")

_CACHE: dict[str, PluginRegistry] = {}


def as_model_input(adata: AnnData) -> AnnData:
    """Benchmark matrices hold log1p(CP10k) in X; give it scagent's canonical layer name."""
    out = AnnData(X=adata.X, obs=adata.obs.copy(), var=adata.var[[]].copy())
    out.layers[LAYER_LOG1P] = adata.X
    return out


def quick_config(quick: bool) -> TrainConfig | None:
    """A few steps per plugin for smoke tests; the default settings otherwise."""
    return TrainConfig(max_epochs=2, min_steps_per_epoch=3, batch_size=32) if quick else None


class FrozenLinearPeer(Peer):
    """The frozen benchmark encoder with a plain linear head (no LoRA): MoE-LoRA's baseline."""

    name = "frozen encoder + linear head"
    heavy = True

    def _embed(self, adata: AnnData) -> np.ndarray:
        from ._crossstudy import _bench_encoder

        query = as_model_input(adata)
        embed(query, model=_bench_encoder()[0])
        return query.obsm[OBSM_EMBED]

    def fit(self, adata, labels):
        self.model = make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=3000, random_state=self.seed)
        )
        self.model.fit(self._embed(adata), labels)

    def predict(self, adata, variant=""):
        return self.model.predict(self._embed(adata))
