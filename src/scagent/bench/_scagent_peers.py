"""scagent itself as benchmark rows: MoE-LoRA plugins, and the frozen encoder + linear head."""

from __future__ import annotations

import hashlib
import logging
import tempfile

import numpy as np
from anndata import AnnData
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._constants import LAYER_LOG1P, OBSM_EMBED
from ..plugins import PluginRegistry, TrainConfig, train_reference_plugins
from ..tl import annotate, embed
from ._peers import Peer

__all__ = [
    "FrozenLinearPeer",
    "ScagentPeer",
    "as_model_input",
    "quick_config",
    "trained_registry",
]

logger = logging.getLogger("scagent")

_CACHE: dict[str, PluginRegistry] = {}


def as_model_input(adata: AnnData) -> AnnData:
    """Benchmark matrices hold log1p(CP10k) in X; give it scagent's canonical layer name."""
    out = AnnData(X=adata.X, obs=adata.obs.copy(), var=adata.var[[]].copy())
    out.layers[LAYER_LOG1P] = adata.X
    return out


def trained_registry(
    train: AnnData, *, seed: int = 0, config: TrainConfig | None = None
) -> PluginRegistry:
    """Plugins trained on ``train`` (tissue + one per tissue), cached per cell set and seed.

    The annotation and plugin suites share one training per split this way.
    """
    key = hashlib.sha256(
        ("|".join(train.obs_names) + f"|{train.n_vars}|{seed}|{config}").encode()
    ).hexdigest()
    if key not in _CACHE:
        root = tempfile.mkdtemp(prefix="scagent-bench-plugins-")
        registry = PluginRegistry([root])
        logger.info("Training scagent plugins on %d cells.", train.n_obs)
        train_reference_plugins(
            as_model_input(train), registry, config=config, seed=seed, progress=False
        )
        _CACHE[key] = registry
    return _CACHE[key]


def quick_config(quick: bool) -> TrainConfig | None:
    """A few steps per plugin for smoke tests; the default settings otherwise."""
    return TrainConfig(max_epochs=2, min_steps_per_epoch=3, batch_size=32) if quick else None


class ScagentPeer(Peer):
    """scagent: tissue-assignment plugin, then the tissue's MoE-LoRA plugin (per cell)."""

    name = "scagent (MoE-LoRA plugins)"
    variants = ("", "+ majority vote")
    heavy = True

    def fit(self, adata, labels):
        self.registry = trained_registry(adata, seed=self.seed, config=quick_config(self.quick))

    def predict(self, adata, variant=""):
        query = as_model_input(adata)
        annotate(query, plugins=self.registry, majority_voting=bool(variant))
        self.last = query.obs
        self.last_embedding = query.obsm["X_scagent_tuned"]
        return query.obs["scagent_cell_type"].astype(str).to_numpy()


class FrozenLinearPeer(Peer):
    """The frozen pretrained encoder with a plain linear head (no LoRA): MoE-LoRA's baseline."""

    name = "frozen encoder + linear head"

    def _embed(self, adata: AnnData) -> np.ndarray:
        query = as_model_input(adata)
        embed(query)
        return query.obsm[OBSM_EMBED]

    def fit(self, adata, labels):
        self.model = make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=3000, random_state=self.seed)
        )
        self.model.fit(self._embed(adata), labels)

    def predict(self, adata, variant=""):
        return self.model.predict(self._embed(adata))
