"""Batch effects: annotating datasets the plugins never saw, and batch mixing (iLISI)."""

from __future__ import annotations

import logging
import tempfile

import anndata as ad
import numpy as np
from anndata import AnnData
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from .._constants import LAYER_LOG1P, OBSM_EMBED, OBSM_EMBED_TUNED
from ..plugins import PluginRegistry, train_plugin
from ..pp import prepare
from ..tl import annotate, embed
from ._metrics import scores
from ._mixing import ilisi
from ._peers import KNNPCAPeer, LogRegPeer, MLPPeer, Peer
from ._scagent_peers import as_model_input, quick_config

__all__ = ["baron_donor_rows", "mixing_rows", "pbmc68k", "pbmc68k_rows"]

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


def _restrict(train: AnnData, genes) -> AnnData:
    shared = train.var_names.intersection(genes)
    return train[:, shared].copy()


def pbmc68k_rows(
    atlas: AnnData, train_pos: np.ndarray, registry: PluginRegistry, *, seed: int, quick: bool
) -> list[dict]:
    """A whole dataset held out: pbmc68k_reduced annotated by models trained on the atlas split.

    scagent uses its plugins as they are (tissue assigned per cell, and with the blood plugin
    given); peers are retrained on the training cells restricted to the 765 genes the query
    measured, as a user of those tools would have to.
    """
    query = pbmc68k()
    train = atlas[train_pos]
    scorable = query.obs["cell_type"].isin(set(train.obs["cell_type"].astype(str))).to_numpy()
    truth = query.obs["cell_type"].astype(str).to_numpy()
    rows = []

    def add(method: str, pred: np.ndarray) -> None:
        row = {"protocol": "held-out dataset: pbmc68k_reduced", "genes": "query's 765"}
        tissues = ["blood"] * int(scorable.sum())
        row.update(method=method, **scores(truth[scorable], pred[scorable], tissues))
        row["coverage"] = float(scorable.mean())
        rows.append(row)

    for tissue in (None, "blood"):
        q = as_model_input(query)
        annotate(q, tissue=tissue, plugins=registry)
        label = "scagent" + (" (tissue=blood)" if tissue else " (tissue assigned)")
        add(label, q.obs["scagent_cell_type"].astype(str).to_numpy())
        if tissue is None:
            rows[-1]["tissue_accuracy"] = float((q.obs["scagent_tissue"] == "blood").mean())
    small = _restrict(train, query.var_names)
    peers: tuple[type[Peer], ...] = (LogRegPeer, KNNPCAPeer, MLPPeer)
    for peer_cls in peers:
        peer = peer_cls(seed=seed, quick=quick)
        peer.fit(small, small.obs["cell_type"].astype(str).to_numpy())
        add(peer.row_name(""), np.asarray(peer.predict(query[:, small.var_names], ""), dtype=str))
    return rows


def baron_donor_rows(atlas: AnnData, *, seed: int, quick: bool) -> list[dict]:
    """Leave-one-donor-out on the four Baron pancreas donors: a pancreas plugin and peers
    trained on three donors annotate the fourth."""
    panc = atlas[atlas.obs["tissue"].astype(str) == "pancreas"]
    donors = sorted(panc.obs["donor"].astype(str).unique())
    if quick:
        donors = donors[:1]
    preds: dict[str, list] = {}
    truth = []
    for donor in donors:
        held = (panc.obs["donor"].astype(str) == donor).to_numpy()
        train, test = panc[~held].copy(), panc[held].copy()
        labels = train.obs["cell_type"].astype(str).to_numpy()
        truth.append(test.obs["cell_type"].astype(str).to_numpy())
        plugin = train_plugin(
            as_model_input(train),
            label_key="cell_type",
            tissue="pancreas",
            config=quick_config(quick),
            seed=seed,
            progress=False,
        )
        reg = PluginRegistry([tempfile.mkdtemp(prefix="scagent-bench-baron-")])
        reg.save(plugin)
        q = as_model_input(test)
        annotate(q, tissue="pancreas", plugins=reg)
        preds.setdefault("scagent (pancreas plugin)", []).append(
            q.obs["scagent_cell_type"].astype(str).to_numpy()
        )
        for peer_cls in (LogRegPeer, KNNPCAPeer, MLPPeer):
            peer = peer_cls(seed=seed, quick=quick)
            peer.fit(train, labels)
            preds.setdefault(peer.row_name(""), []).append(
                np.asarray(peer.predict(test, ""), dtype=str)
            )
    y = np.concatenate(truth)
    rows = []
    for method, parts in preds.items():
        row = {"protocol": "leave-one-donor-out: Baron pancreas", "genes": "union"}
        row.update(method=method, **scores(y, np.concatenate(parts), ["pancreas"] * len(y)))
        rows.append(row)
    return rows


def label_purity(X: np.ndarray, labels, k: int = 15) -> float:
    """Mean share of each cell's k nearest neighbours that carry its label."""
    labels = np.asarray(labels)
    nn = NearestNeighbors(n_neighbors=min(k + 1, len(labels))).fit(X)
    idx = nn.kneighbors(X, return_distance=False)[:, 1:]
    return float((labels[idx] == labels[:, None]).mean())


def mixing_rows(atlas: AnnData, registry: PluginRegistry, *, seed: int) -> list[dict]:
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
        embed(q)
        annotate(q, tissue=tissue, plugins=registry)
        n_comps = min(50, data.n_obs - 1, data.n_vars - 1)
        pca = PCA(n_components=n_comps, random_state=seed).fit_transform(
            data.X.toarray() if hasattr(data.X, "toarray") else data.X
        )
        for space, X in (
            ("PCA (50)", pca),
            ("X_scagent (pretrained)", q.obsm[OBSM_EMBED]),
            (f"X_scagent_tuned ({tissue} plugin)", q.obsm[OBSM_EMBED_TUNED]),
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
