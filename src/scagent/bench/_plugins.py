"""Plugin benchmark: what the plugins learnt, batch mixing of their embeddings, switching."""

from __future__ import annotations

import logging
import time

import numpy as np
from anndata import AnnData

from .._constants import OBSM_EMBED
from ..datasets import reference_atlas
from ..plugins import PluginRegistry, host_for
from ..tl import embed
from ._batch import mixing_rows
from ._report import Section
from ._scagent_peers import as_model_input, quick_config
from ._splits import stratified_split

__all__ = ["plugins_suite"]

logger = logging.getLogger("scagent")


def _switch_rows(registry: PluginRegistry) -> list[dict]:
    enc = registry.encoder
    host = host_for(enc)
    names = [n for n in registry.names() if n != "tissue"][:2]
    keys = [host.attach(registry.load(n)) for n in names]
    reps = 500
    t0 = time.perf_counter()
    for i in range(reps):
        host.use(keys[i % 2])
    switch_ms = (time.perf_counter() - t0) / reps * 1e3
    host.detach(keys[0])
    t0 = time.perf_counter()
    host.attach(registry.load(names[0]))
    attach_ms = (time.perf_counter() - t0) * 1e3
    host.use(None)
    return [
        {"operation": f"switch active plugin ({names[0]} <-> {names[1]})", "ms": switch_ms},
        {
            "operation": "first use: read plugin from disk + attach to the loaded encoder",
            "ms": attach_ms,
        },
    ]


def _umap_plot(section: Section, test: AnnData, registry, encoder) -> None:
    from ._batch import _tuned
    from ._plots import umap_plot

    q = as_model_input(test)
    embed(q, model=encoder)
    labels = q.obs["cell_type"].astype(str).to_numpy()
    tuned = np.zeros((q.n_obs, encoder.dim), dtype=np.float32)
    tissues = q.obs["tissue"].astype(str).to_numpy()
    for t in np.unique(tissues):
        rows = tissues == t
        tuned[rows] = _tuned(q[rows].copy(), encoder, registry, t)
    embs = {"X_scagent (pretrained)": q.obsm[OBSM_EMBED], "X_scagent_tuned": tuned}
    section.plots.append(
        (
            "UMAP of the 80/20 test cells in the pretrained and the plugin-tuned embedding "
            "(each cell through its own tissue's plugin), coloured by true type",
            "embeddings_umap.png",
            lambda path: umap_plot(embs, labels, path, title="80/20 test cells"),
        )
    )


def _plugin_rows(registry) -> list[dict]:
    """What the trained plugins say about themselves (their manifests)."""
    rows = []
    for name in registry.names():
        m = registry.manifest(name)
        metrics, training = m.get("metrics", {}), m.get("training", {})
        rows.append(
            {
                "plugin": name,
                "classes": len(m["head"]["slots"]),
                "training cells": training.get("n_train"),
                "adapter trained": m.get("adapter", {}).get(
                    "trained", metrics.get("adapter_trained")
                ),
                "validation macro-F1": metrics.get("macro_f1"),
                "ECE before / after temperature": (
                    f"{metrics.get('ece_uncalibrated', float('nan')):.3f} / "
                    f"{metrics.get('ece', float('nan')):.3f}"
                ),
                "seconds": training.get("seconds"),
            }
        )
    return rows


def plugins_suite(*, seed: int = 0, quick: bool = False) -> Section:
    """Plugins trained on the 80/20 training cells: what they learnt, batch mixing of their
    embeddings, switching cost."""
    from .._settings import settings
    from ._crossstudy import _bench_encoder
    from ._lazy_registry import LazyRegistry

    atlas = reference_atlas()
    fold = stratified_split(atlas.obs, seed=seed)
    encoder, note = _bench_encoder()
    registry = LazyRegistry(
        settings.data_dir / "bench_cache" / "plugins",
        atlas[fold.train],
        encoder,
        config=quick_config(quick),
        seed=seed,
    )
    section = Section(
        "MoE-LoRA plugins",
        f"Plugins trained on the 80/20 training cells on the {note}: their own validation "
        "record, batch mixing of their embeddings, and switching between them on one loaded "
        "encoder. Their annotation quality, fused with the other experts, is in the "
        "cross-study section.",
    )
    logger.info("Plugins benchmark: batch mixing.")
    section.extra_tables.append(("Batch mixing", mixing_rows(atlas, registry, encoder, seed=seed)))
    section.extra_tables.append(("Plugins (from their manifests)", _plugin_rows(registry)))
    section.extra_tables.append(("Plugin switching on one loaded encoder", _switch_rows(registry)))
    if not quick:
        _umap_plot(section, atlas[fold.test], registry, encoder)
    section.notes += [
        "iLISI: integration LISI (Korsunsky et al. 2019), median over cells, scaled to 0-1 "
        "(1: batches perfectly mixed); kNN type purity: share of a cell's 15 neighbours with "
        "its type (mixing should not come from blurring types). The tuned embedding for "
        "Baron comes from a plugin that saw 80% of those cells in training.",
    ]
    return section
