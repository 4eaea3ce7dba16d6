"""Cell-type annotation benchmark: peers on the bundled atlas, same splits, same run."""

from __future__ import annotations

import logging

import numpy as np
from anndata import AnnData

from .._constants import LAYER_LOG1P
from ..datasets import reference_atlas
from ..pp import prepare
from ._measure import measure
from ._metrics import scores
from ._peers import PEERS, Peer
from ._report import Section
from ._splits import Fold, holdout_folds, stratified_split

__all__ = ["annotation_suite", "load_benchmark_atlas"]

logger = logging.getLogger("scagent")

LABEL_KEY = "cell_type"
TISSUE_KEY = "tissue"


def load_benchmark_atlas(gene_space: str = "union") -> AnnData:
    """The bundled atlas with ``X`` = log1p(CP10k).

    ``gene_space="intersection"`` keeps only genes measured in every dataset.
    """
    adata = reference_atlas()
    prepare(adata)
    adata.X = adata.layers[LAYER_LOG1P]
    del adata.layers[LAYER_LOG1P]
    if gene_space == "intersection":
        cols = [c for c in adata.var.columns if c.startswith("measured_in_")]
        adata = adata[:, adata.var[cols].all(axis=1).to_numpy()].copy()
    elif gene_space != "union":
        msg = f"gene_space must be 'union' or 'intersection', got {gene_space!r}."
        raise ValueError(msg)
    return adata


def _run_folds(adata: AnnData, folds: list[Fold], peer: Peer) -> list[dict]:
    """Train and predict a peer on each fold; pool the evaluable predictions."""
    labels = adata.obs[LABEL_KEY].astype(str).to_numpy()
    tissues = adata.obs[TISSUE_KEY].astype(str).to_numpy()
    pooled = {v: ([], []) for v in peer.variants}  # variant -> (positions, predictions)
    train_s = train_mb = 0.0
    predict_s = {v: 0.0 for v in peer.variants}
    predict_mb = {v: 0.0 for v in peer.variants}
    n_test = 0
    for fold in folds:
        known = set(labels[fold.train])
        test = fold.test[np.isin(labels[fold.test], list(known))]
        n_test += len(fold.test)
        if len(test) == 0:
            continue
        with measure() as m:
            peer.fit(adata[fold.train], labels[fold.train])
        train_s += m.seconds
        train_mb = max(train_mb, m.peak_mb)
        query = adata[test]
        for v in peer.variants:
            with measure() as m:
                pred = peer.predict(query, v)
            predict_s[v] += m.seconds
            predict_mb[v] = max(predict_mb[v], m.peak_mb)
            pooled[v][0].append(test)
            pooled[v][1].append(pred)
    rows = []
    for v in peer.variants:
        pos = np.concatenate(pooled[v][0]) if pooled[v][0] else np.array([], dtype=int)
        pred = np.concatenate(pooled[v][1]) if pooled[v][1] else np.array([], dtype=str)
        row = {"method": peer.row_name(v), **scores(labels[pos], pred, tissues[pos])}
        row.update(
            coverage=len(pos) / max(n_test, 1),
            train_s=train_s,
            predict_s=predict_s[v],
            train_peak_mb=train_mb,
            predict_peak_mb=predict_mb[v],
            cells_per_s=len(pos) / predict_s[v] if predict_s[v] > 0 else float("nan"),
        )
        rows.append(row)
    return rows


def annotation_suite(
    *, peers: tuple[type[Peer], ...] | None = None, seed: int = 0, quick: bool = False
) -> Section:
    """Run the annotation benchmark.

    Protocols: (1) stratified 80/20 split within each tissue, on the union of genes and on
    the genes measured in every dataset; (2) leave-one-donor-or-dataset-out within each
    tissue (union of genes), scored on held-out cells whose type occurs in training.
    ``quick`` runs protocol (1) on the union of genes only. The frozen benchmark encoder with
    a linear head is heavy: it runs on protocol (1) only. scagent itself on the same 80/20
    split ("held-out cells, raw counts") is in the cross-study section, with its reference
    restricted to the training cells.
    """
    from ._scagent_peers import FrozenLinearPeer

    if peers is None:
        peers = (*PEERS, FrozenLinearPeer)
    obs = reference_atlas().obs
    section = Section(
        "Cell-type annotation",
        f"Bundled reference atlas ({len(obs):,} real cells, {obs[TISSUE_KEY].nunique()} tissues, "
        f"{obs[LABEL_KEY].nunique()} types). Every method gets log1p(CP10k) of the same cells; "
        "macro-F1 averages over the true types present.",
        notes=[
            "80/20: cells split 80/20 within every (tissue, type); types with one cell stay "
            "in training. 'intersection' keeps only the genes measured in all four studies.",
            "leave-one-donor-out: within each tissue, each donor (or dataset, where a tissue "
            "has one donor) is held out once while all other cells train; held-out cells whose "
            "type does not occur in training cannot be named by any classifier and are not "
            "scored ('coverage' is the share scored). PBMC3k is the only source of most blood "
            "types, so holding it out leaves them unscorable.",
        ],
    )
    protocols = [("80/20 per tissue", "union")]
    if not quick:
        protocols += [("80/20 per tissue", "intersection"), ("leave-one-donor-out", "union")]
    for protocol, genes in protocols:
        adata = load_benchmark_atlas(genes)
        if protocol.startswith("80/20"):
            folds = [stratified_split(adata.obs, seed=seed)]
        else:
            folds = holdout_folds(adata.obs)
        logger.info("Annotation benchmark: %s, %s genes (%d).", protocol, genes, adata.n_vars)
        for peer_cls in peers:
            if peer_cls.heavy and (protocol, genes) != protocols[0]:
                continue
            peer = peer_cls(seed=seed, quick=quick)
            for row in _run_folds(adata, folds, peer):
                row.update(protocol=protocol, genes=f"{genes} ({adata.n_vars})")
                section.rows.append(row)
                logger.info("  %s: macro-F1 %.3f", row["method"], row["macro_f1"])
    _radar(section, protocols[0])
    for protocol, genes in protocols:
        rows = [
            r for r in section.rows if r["protocol"] == protocol and r["genes"].startswith(genes)
        ]
        best = max(rows, key=lambda r: r["macro_f1"])
        section.notes.append(
            f"Best by macro-F1, {protocol}, {genes} genes: {best['method']} "
            f"({best['macro_f1']:.3f}; weighted-F1 {best['weighted_f1']:.3f})."
        )
    return section


def _radar(section: Section, first: tuple[str, str]) -> None:
    from ._plots import radar_plot

    rows = [
        r for r in section.rows if r["protocol"] == first[0] and r["genes"].startswith(first[1])
    ]
    values = {r["method"]: r["per_tissue_weighted_f1"] for r in rows}
    if values:
        section.plots.append(
            (
                "weighted-F1 per tissue, 80/20 split, union of genes",
                "annotation_radar.png",
                lambda path: radar_plot(values, path, title="weighted-F1 per tissue (80/20)"),
            )
        )
