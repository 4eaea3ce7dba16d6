"""Batch effects: annotating datasets the plugins never saw, and batch mixing (iLISI)."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
from anndata import AnnData
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from .._constants import LAYER_LOG1P, OBSM_EMBED
from ..plugins import PluginRegistry
from ..pp import prepare
from ..tl import embed
from ._mixing import ilisi
from ._scagent_peers import as_model_input

__all__ = ["label_purity", "mixing_rows", "pbmc68k"]

logger = logging.getLogger("scagent")

#: pbmc68k_reduced's published ``bulk_labels`` in the atlas's vocabulary (CD34+ has none).
PBMC68K_LABELS = {
    "CD14+ Monocyte": "CD14+ monocyte",
    "CD19+ B": "B cell",
    "CD56+ NK": "natural killer cell",
    "Dendritic": "dendritic cell",
    "CD8+ Cytotoxic T": "CD8+ T cell",
    "CD8+/CD45RA+ Naive Cytotoxic": "CD8+ T cell",
    "CD4+/CD45RO+ Memory": "memory CD4+ T cell",
    "CD4+/CD45RA+/CD25- Naive T": "naive CD4+ T cell",
    "CD4+/CD25 T Reg": "regulatory T cell",
}


def pbmc68k() -> AnnData:
    """scanpy's ``pbmc68k_reduced`` (Zheng 2017, 700 cells, 765 genes, log-normalised ``.raw``)
    with ``X`` = scagent's log1p layer and ``cell_type`` mapped to the atlas's names."""
    import scanpy as sc

    adata = sc.datasets.pbmc68k_reduced()
    prepare(adata)
    out = AnnData(X=adata.layers[LAYER_LOG1P], obs=adata.obs[["bulk_labels"]].copy())
    out.var_names = adata.var_names
    out.obs["cell_type"] = out.obs["bulk_labels"].astype(str).map(PBMC68K_LABELS).fillna("")
    out.obs["tissue"] = "blood"
    out.obs["dataset"] = "pbmc68k_reduced"
    return out


def label_purity(X: np.ndarray, labels, k: int = 15) -> float:
    """Mean share of each cell's k nearest neighbours that carry its label."""
    labels = np.asarray(labels)
    nn = NearestNeighbors(n_neighbors=min(k + 1, len(labels))).fit(X)
    idx = nn.kneighbors(X, return_distance=False)[:, 1:]
    return float((labels[idx] == labels[:, None]).mean())


def _tuned(adata: AnnData, encoder, registry: PluginRegistry, tissue: str) -> np.ndarray:
    """``X_scagent_tuned`` of every cell through ``tissue``'s plugin."""
    from ..experts import plugin_expert
    from ..models import model_input

    X, ids, _ = model_input(adata, encoder)
    _, emb = plugin_expert(X, ids, encoder, registry, np.full(adata.n_obs, tissue), progress=False)
    return emb


def mixing_rows(atlas: AnnData, registry: PluginRegistry, encoder, *, seed: int) -> list[dict]:
    """iLISI (batch mixing, 0..1) and kNN type purity of PCA, ``X_scagent`` and
    ``X_scagent_tuned`` where the same types come from different batches."""
    query = pbmc68k()
    pbmc3k = atlas[atlas.obs["dataset"].astype(str) == "pbmc3k"]
    shared_types = sorted(set(query.obs["cell_type"]) & set(pbmc3k.obs["cell_type"].astype(str)))
    genes = pbmc3k.var_names.intersection(query.var_names)
    a = pbmc3k[pbmc3k.obs["cell_type"].isin(shared_types).to_numpy(), genes]
    b = query[query.obs["cell_type"].isin(shared_types).to_numpy(), genes]
    pbmc = ad.concat([a, b], join="inner")
    pbmc.obs["batch"] = np.r_[["pbmc3k"] * a.n_obs, ["pbmc68k_reduced"] * b.n_obs]
    panc = atlas[atlas.obs["tissue"].astype(str) == "pancreas"].copy()
    panc.obs["batch"] = panc.obs["donor"].astype(str)
    tcell = atlas[atlas.obs["cell_type"].astype(str).str.contains("T cell").to_numpy()].copy()
    tcell = tcell[tcell.obs["dataset"].isin(["pbmc3k", "wu2020"]).to_numpy()].copy()
    tcell.obs["batch"] = tcell.obs["dataset"].astype(str)
    settings = [
        ("PBMC3k vs pbmc68k_reduced (shared types, 765 genes)", pbmc, "blood"),
        ("Baron pancreas, 4 donors", panc, "pancreas"),
        ("T cells: Wu 2020 (5 tissues) vs PBMC3k", tcell, "blood"),
    ]
    rows = []
    for name, data, tissue in settings:
        q = as_model_input(data)
        embed(q, model=encoder)
        tuned = _tuned(q, encoder, registry, tissue)
        n_comps = min(50, data.n_obs - 1, data.n_vars - 1)
        pca = PCA(n_components=n_comps, random_state=seed).fit_transform(
            data.X.toarray() if hasattr(data.X, "toarray") else data.X
        )
        for space, X in (
            ("PCA (50)", pca),
            ("X_scagent (pretrained)", q.obsm[OBSM_EMBED]),
            (f"X_scagent_tuned ({tissue} plugin)", tuned),
        ):
            rows.append(
                {
                    "cells": f"{name} ({data.n_obs})",
                    "embedding": space,
                    "iLISI (0-1, higher = mixed)": ilisi(X, data.obs["batch"].to_numpy()),
                    "kNN type purity": label_purity(X, data.obs["cell_type"].astype(str)),
                }
            )
    return rows
