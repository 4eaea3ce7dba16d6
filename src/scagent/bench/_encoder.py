"""Encoder benchmark: is pretraining worth it, and how fast is ``sa.tl.embed``?"""

from __future__ import annotations

import logging

import numpy as np
from anndata import AnnData
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._constants import LAYER_LOG1P, OBSM_EMBED
from .._settings import settings
from ..datasets import reference_atlas
from ..models import Encoder
from ..nn import TransformerModel
from ..pp import prepare
from ..tl import embed
from ._measure import measure
from ._metrics import scores
from ._report import Section
from ._splits import stratified_split

__all__ = ["encoder_suite"]

logger = logging.getLogger("scagent")

SPEED_CELLS = 10_000


def _random_twin(enc: Encoder, seed: int) -> Encoder:
    """An encoder of the same size and vocabulary with freshly initialised weights."""
    import torch

    torch.manual_seed(seed)
    model = TransformerModel(enc.model.cfg).eval()
    return Encoder(model, enc.vocab, enc.max_len, enc.n_bins, "random init", "", enc.kind)


def _probe_rows(name: str, Z: np.ndarray, labels, tissues, fold, seed: int) -> list[dict]:
    rows = []
    probes = (
        (
            "linear probe",
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, random_state=seed)),
        ),
        ("kNN (k=15)", KNeighborsClassifier(n_neighbors=15)),
    )
    for probe, clf in probes:
        clf.fit(Z[fold.train], labels[fold.train])
        pred = clf.predict(Z[fold.test])
        row = {"method": f"{name}: {probe}", "protocol": "80/20 per tissue", "genes": "own"}
        row.update(scores(labels[fold.test], pred, tissues[fold.test]))
        rows.append(row)
    return rows


def _speed_rows(adata: AnnData, seed: int) -> list[dict]:
    """End-to-end ``sa.tl.embed`` on 10,000 real cells (atlas resampled), next to PCA."""
    rng = np.random.default_rng(seed)
    big = adata[rng.choice(adata.n_obs, SPEED_CELLS, replace=True)].copy()
    big.obs_names_make_unique()
    rows = []
    with measure() as m:
        embed(big)  # counts in: prepare (on a copy), tokenise, forward
    rows.append(
        {
            "step": "sa.tl.embed, default encoder (prepare + tokenise + forward)",
            "cells": SPEED_CELLS,
            "seconds": m.seconds,
            "cells_per_s": SPEED_CELLS / m.seconds,
            "target_cells_per_s": 300,
            "peak_mb": m.peak_mb,
            "device": settings.resolved_device(),
        }
    )
    with measure() as m:
        prepared = prepare(big, copy=True)
        PCA(n_components=50, random_state=seed).fit_transform(
            prepared.layers[LAYER_LOG1P][:, :5000].toarray()
        )
    rows.append(
        {
            "step": "peer representation: prepare + PCA-50 (first 5,000 genes), same cells",
            "cells": SPEED_CELLS,
            "seconds": m.seconds,
            "cells_per_s": SPEED_CELLS / m.seconds,
            "target_cells_per_s": float("nan"),
            "peak_mb": m.peak_mb,
            "device": "cpu",
        }
    )
    return rows


def encoder_suite(*, seed: int = 0, quick: bool = False) -> Section:
    """Linear-probe and kNN macro-F1 of pretrained vs random encoder vs PCA; embed speed."""
    adata = reference_atlas()
    if quick:
        adata = adata[::6].copy()
    prepare(adata)
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    tissues = adata.obs["tissue"].astype(str).to_numpy()
    fold = stratified_split(adata.obs, seed=seed)
    from ._crossstudy import _bench_encoder

    enc, note = _bench_encoder()
    section = Section(
        "Foundation encoder",
        "Cell-type probes on the bundled atlas (same stratified 80/20 split as the annotation "
        f"benchmark) from three representations: the {note} (`X_scagent`), an encoder of "
        "the same size and vocabulary with random weights, and PCA (50 components, fitted on "
        "the training cells) of log1p(CP10k). Linear probe: standardised features, logistic "
        "regression; kNN: 15 neighbours, Euclidean.",
    )
    embed(adata, model=enc)
    section.rows += _probe_rows(
        "pretrained encoder", adata.obsm[OBSM_EMBED], labels, tissues, fold, seed
    )
    Zr, _ = _random_twin(enc, seed).embed(adata.layers[LAYER_LOG1P], enc.gene_ids(adata.var_names))
    section.rows += _probe_rows("random-init encoder", Zr, labels, tissues, fold, seed)
    X = adata.layers[LAYER_LOG1P]
    pca = PCA(n_components=50, random_state=seed).fit(X[fold.train].toarray())
    Zp = pca.transform(X.toarray())
    section.rows += _probe_rows("PCA-50", Zp, labels, tissues, fold, seed)
    cfg = enc.model.cfg
    section.notes.append(
        f"Encoder: d_model {cfg.d_model}, {cfg.nlayers} layers, {cfg.nhead} heads, "
        f"d_hid {cfg.d_hid}, {enc.max_len} tokens per cell, {len(enc.vocab) - 3:,} genes, "
        f"{enc.n_parameters:,} parameters (the shipped default has the same shape)."
    )
    by = {r["method"]: r["macro_f1"] for r in section.rows}
    for probe in ("linear probe", "kNN (k=15)"):
        pre, rnd, pca_ = (
            by[f"{n}: {probe}"] for n in ("pretrained encoder", "random-init encoder", "PCA-50")
        )
        section.notes.append(
            f"{probe}: pretrained {pre:.3f} vs random {rnd:.3f} ({pre - rnd:+.3f}) vs PCA "
            f"{pca_:.3f} ({pre - pca_:+.3f}) macro-F1."
        )
    if not quick:
        section.extra_tables.append(("Embedding speed", _speed_rows(reference_atlas(), seed)))
    return section
