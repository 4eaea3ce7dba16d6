"""Plugins for a benchmark reference, trained the first time they are asked for.

A cross-study task holds one study out of the reference, so its plugins must be trained
without it; the annotation pipeline only asks for the tissue-assignment plugin and the
plugins of the tissues it decides on, so training the others would be wasted. Trained
plugins are kept on disk (keyed by the reference's cells, the encoder and the seed) and
reused by later runs.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from anndata import AnnData

from ..plugins import TISSUE_PLUGIN, PluginRegistry, TrainConfig, train_plugin
from ..plugins._reference import tissue_training_cells

__all__ = ["LazyRegistry"]

logger = logging.getLogger("scagent")


class LazyRegistry(PluginRegistry):
    """A registry whose plugins are trained on ``reference`` when first loaded.

    Parameters
    ----------
    root
        Cache folder (a sub-folder per reference, encoder and seed is used).
    reference
        Labelled cells (raw counts; ``obs`` ``tissue`` and ``cell_type``).
    encoder
        The loaded encoder to adapt.
    config
        Training settings.
    seed
        Training seed.
    """

    def __init__(
        self,
        root: str | Path,
        reference: AnnData,
        encoder,
        *,
        config: TrainConfig | None = None,
        seed: int = 0,
    ) -> None:
        key = hashlib.sha256(
            (
                "\n".join(reference.obs_names)
                + f"|{reference.n_vars}|{encoder.sha256}|{seed}|{config}"
            ).encode()
        ).hexdigest()[:20]
        super().__init__([Path(root) / key])
        self.reference = reference
        self.encoder = encoder
        self.config = config
        self.seed = seed
        self._tissues = sorted(reference.obs["tissue"].astype(str).unique())

    def tissues(self) -> list[str]:
        """Tissues of the reference (each gets a plugin when first asked for)."""
        return list(self._tissues)

    def names(self) -> list[str]:
        """The tissue-assignment plugin and one plugin per tissue."""
        return sorted([TISSUE_PLUGIN, *self._tissues])

    def plugin_for(self, tissue: str) -> str:
        """The plugin of ``tissue`` is named after it."""
        return tissue

    def _ensure(self, name: str) -> None:
        if super().versions(name):
            return
        obs = self.reference.obs
        kw = {"model": self.encoder, "config": self.config, "seed": self.seed, "progress": False}
        if name == TISSUE_PLUGIN:
            logger.info("Training the tissue plugin on %d cells.", self.reference.n_obs)
            plugin = train_plugin(
                self.reference, label_key="tissue", kind="tissue_assignment", max_len=64, **kw
            )
        else:
            rows = tissue_training_cells(
                obs, name, tissue_key="tissue", label_key="cell_type", borrow=True
            )
            logger.info("Training the %s plugin on %d cells.", name, len(rows))
            plugin = train_plugin(
                self.reference[rows].copy(), label_key="cell_type", tissue=name, **kw
            )
        self.save(plugin)

    def manifest(self, name: str, version: int | None = None) -> dict:
        """A plugin's manifest (training it first if needed)."""
        self._ensure(name)
        return super().manifest(name, version)

    def load(self, name: str, version: int | None = None):
        """A plugin (training it first if needed)."""
        self._ensure(name)
        return super().load(name, version)
