"""The plugin expert: the paper's MoE-LoRA tissue plugins on the foundation encoder.

Each cell goes through the cell-type plugin of the tissue it was assigned (see
:mod:`~scagent.experts._tissue`); all plugins ride on one loaded encoder and switching is a
flag flip. The tissue-assignment plugin gives per-cluster votes on a sample of each
cluster's cells (tissue is decided per dataset or cluster, never per lone cell).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .._settings import settings
from ..models import Encoder
from ..plugins import TISSUE_PLUGIN, PluginError, PluginRegistry, host_for
from ._base import ExpertCall

__all__ = ["plugin_expert", "tissue_votes"]


def _run(host, key: str, X, ids: np.ndarray, rows: np.ndarray, batch_size: int, bar):
    """Probabilities and tuned embeddings of plugin ``key`` on ``rows`` of ``X``."""
    n_tok = host.max_len(key)
    probs, embs = [], []
    for s in range(0, len(rows), batch_size):
        part = rows[s : s + batch_size]
        tokens = host.tokens(X[part], ids, n_tok)[0]
        out = host.predict(key, tokens)
        probs.append(out.probs)
        embs.append(out.embedding)
        bar.update(len(part))
    return np.concatenate(probs), np.concatenate(embs)


def plugin_expert(
    X,
    ids: np.ndarray,
    encoder: Encoder,
    registry: PluginRegistry,
    tissue_per_cell: np.ndarray,
    *,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> tuple[ExpertCall, np.ndarray]:
    """Run each cell through its tissue's cell-type plugin.

    Parameters
    ----------
    X, ids
        The encoder's input (:func:`scagent.models.model_input`): log1p(CP10k) with one
        column per vocabulary id, and those ids.
    encoder
        The encoder the plugins were trained on.
    registry
        Where the plugins are.
    tissue_per_cell
        The tissue whose plugin reads each cell; cells of a tissue without a plugin get no
        opinion (a row of NaN).
    batch_size, progress
        Cells per forward pass and progress bar (defaults: ``sa.settings``).

    Returns
    -------
    The expert's call over the plugins' Cell Ontology ids (a plugin's classes sharing an id
    are summed), and the (cells, d_model) plugin-tuned embeddings (NaN rows where no plugin
    ran).
    """
    t0 = time.perf_counter()
    batch_size = batch_size or settings.batch_size
    progress = settings.progress if progress is None else progress
    host = host_for(encoder)
    tissue_per_cell = np.asarray(tissue_per_cell, dtype=object)
    n = len(tissue_per_cell)
    available = set(registry.tissues())
    runs, terms, names = {}, {}, {}
    with tqdm(total=n, disable=not progress, desc="plugins", unit="cell") as bar:
        for tissue in pd.unique(tissue_per_cell):
            if tissue not in available:
                continue
            plugin = registry.load(registry.plugin_for(tissue))
            key = host.attach(plugin)
            rows = np.flatnonzero(tissue_per_cell == tissue)
            p, e = _run(host, key, X, ids, rows, batch_size, bar)
            runs[tissue] = (plugin, rows, p, e)
            for lab, oid in zip(plugin.labels, plugin.ontology_ids):
                term = oid or f"name:{lab}"
                terms.setdefault(term, len(terms))
                names.setdefault(term, lab)
    probs = np.full((n, len(terms)), np.nan, dtype=np.float32)
    emb = np.full((n, encoder.dim), np.nan, dtype=np.float32)
    used = {}
    for tissue, (plugin, rows, p, e) in runs.items():
        block = np.zeros((len(rows), len(terms)), dtype=np.float32)
        for j, (lab, oid) in enumerate(zip(plugin.labels, plugin.ontology_ids)):
            block[:, terms[oid or f"name:{lab}"]] += p[:, j]
        probs[rows] = block
        emb[rows] = e
        used[plugin.name] = {
            "version": int(plugin.version),
            "tissue": tissue,
            "cells": len(rows),
            "adapter_trained": bool(plugin.metrics.get("adapter_trained", True)),
        }
    info = {
        "encoder": encoder.name,
        "encoder_sha256": encoder.sha256,
        "plugins": used,
        "cells_without_plugin": int(n - sum(len(r[1]) for r in runs.values())),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    call = ExpertCall("plugin", probs, list(terms), [names[t] for t in terms], info)
    return call, emb


def tissue_votes(
    X,
    ids: np.ndarray,
    encoder: Encoder,
    registry: PluginRegistry,
    clusters: np.ndarray,
    *,
    per_cluster: int = 32,
    seed: int = 0,
) -> pd.DataFrame | None:
    """Mean tissue-plugin probabilities per cluster, from a sample of each cluster's cells.

    Returns ``None`` when the registry has no tissue-assignment plugin or it does not fit
    the encoder.
    """
    if TISSUE_PLUGIN not in registry.names():
        return None
    host = host_for(encoder)
    try:
        plugin = registry.load(TISSUE_PLUGIN)
        key = host.attach(plugin)
    except PluginError:
        return None
    rng = np.random.default_rng(seed)
    clusters = np.asarray(clusters).astype(str)
    rows = np.sort(
        np.concatenate(
            [
                rng.permutation(np.flatnonzero(clusters == c))[:per_cluster]
                for c in np.unique(clusters)
            ]
        )
    )
    with tqdm(total=len(rows), disable=True) as bar:
        p, _ = _run(host, key, X, ids, rows, settings.batch_size, bar)
    frame = pd.DataFrame(p, columns=list(plugin.labels))
    return frame.groupby(clusters[rows]).mean()
