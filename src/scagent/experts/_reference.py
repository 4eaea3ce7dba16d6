"""The reference expert: a classifier trained at annotation time on the query's own genes.

A query that measured 765 or 1,000 genes gets a model built for exactly those genes: the
reference cells are cut to the genes both sides have, re-normalised over them (counts per
10,000 of the shared genes, then log1p) on both sides, and a multinomial logistic regression
(scikit-learn) learns the reference's Cell Ontology classes on a balanced sample. Genes a
reference study did not measure are filled with the mean of the studies that did (no label
information enters the fill). The fitted model is a plain linear map, kept on disk as
``.npz`` + JSON (never a pickle) under ``sa.settings.data_dir / "cache" / "reference"``,
keyed by the reference version, the gene panel and the tissue, so a second file with the
same panel costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._constants import TARGET_SUM
from .._errors import InputDataError
from .._files import atomic_file
from .._settings import settings
from ..knowledge import cell_ontology
from ._base import ExpertCall

__all__ = [
    "ReferenceModel",
    "class_names",
    "fit_reference_model",
    "reference_expert",
    "shared_log1p",
]

logger = logging.getLogger("scagent")

#: Version of the fitting recipe; part of every cache key.
RECIPE = "lr-shared-genes-v3"
LABEL_KEY = "cell_type_ontology_term_id"
NAME_KEY = "cell_type"
#: Fewest shared genes a reference model is fitted on.
MIN_SHARED_GENES = 50


@dataclass
class ReferenceModel:
    """A fitted linear classifier over a gene panel.

    Attributes
    ----------
    genes
        The panel (current human symbols), in column order.
    terms, names
        Class Cell Ontology ids and readable names.
    coef, intercept
        (classes, genes) and (classes,) of the multinomial logistic regression on
        log1p(CP10k over the panel).
    centroids
        (classes, genes) mean log1p(CP10k over the panel) of each class's training cells.
    info
        Provenance: reference version, tissue, cells per class, fitting time...
    """

    genes: np.ndarray
    terms: list[str]
    names: list[str]
    coef: np.ndarray
    intercept: np.ndarray
    centroids: np.ndarray
    info: dict = field(default_factory=dict)

    def predict_proba(self, F) -> np.ndarray:
        """Class probabilities of log1p(CP10k over the panel) rows ``F``."""
        z = np.asarray(F @ self.coef.T, dtype=np.float64) + self.intercept
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return p.astype(np.float32)

    def similarity(self, F) -> np.ndarray:
        """Cosine similarity of each row of ``F`` to its nearest class centroid."""
        F = sp.csr_matrix(F, dtype=np.float32)
        norms = np.sqrt(np.asarray(F.multiply(F).sum(axis=1)).ravel())
        C = self.centroids / np.maximum(
            np.linalg.norm(self.centroids, axis=1, keepdims=True), 1e-12
        )
        sim = np.asarray(F @ C.T) / np.maximum(norms, 1e-12)[:, None]
        return sim.max(axis=1).astype(np.float32)

    def save(self, path: Path) -> None:
        """Write ``<path>.npz`` and ``<path>.json`` (each atomically)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "genes": self.genes.astype(str),
            "coef": self.coef.astype(np.float32),
            "intercept": self.intercept.astype(np.float32),
            "centroids": self.centroids.astype(np.float32),
        }
        meta = {"terms": self.terms, "names": self.names, "info": self.info}
        for suffix, write in (
            (".npz", lambda fh: np.savez_compressed(fh, **arrays)),
            (".json", lambda fh: fh.write(json.dumps(meta).encode())),
        ):
            with atomic_file(path.with_suffix(suffix)) as tmp, open(tmp, "wb") as fh:
                write(fh)

    @classmethod
    def load(cls, path: Path) -> ReferenceModel | None:
        """Read a saved model (``None`` if missing or unreadable: it is refitted)."""
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
            with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
                genes, coef, intercept = z["genes"], z["coef"], z["intercept"]
                centroids = z["centroids"]
        except (OSError, ValueError, KeyError):
            return None
        if coef.shape != (len(meta["terms"]), len(genes)) or centroids.shape != coef.shape:
            return None
        return cls(genes, meta["terms"], meta["names"], coef, intercept, centroids, meta["info"])


def _log1p_over(M) -> sp.csr_matrix:
    """log1p of counts per 10,000 of the given columns (rows with no counts stay zero)."""
    M = sp.csr_matrix(M, dtype=np.float32)
    sums = np.asarray(M.sum(axis=1)).ravel()
    scale = np.divide(TARGET_SUM, sums, out=np.zeros_like(sums), where=sums > 0)
    out = sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ M)
    out.data = np.log1p(out.data)
    return out


def shared_log1p(X_log1p, genes, panel) -> sp.csr_matrix:
    """A query's log1p(CP10k) matrix re-normalised over ``panel`` (absent genes are 0)."""
    idx = pd.Index(np.asarray(genes, dtype=str)).get_indexer(np.asarray(panel, dtype=str))
    X = sp.csr_matrix(X_log1p, dtype=np.float32)
    lin = X.copy()
    lin.data = np.expm1(lin.data)
    cols = sp.csr_matrix(
        (np.ones((idx >= 0).sum(), dtype=np.float32), (idx[idx >= 0], np.flatnonzero(idx >= 0))),
        shape=(X.shape[1], len(panel)),
    )
    return _log1p_over(lin @ cols)


def class_names(obs: pd.DataFrame) -> dict[str, str]:
    """A readable name per class id: the reference's own name if it is the only one, else
    the Cell Ontology label."""
    onto = cell_ontology()
    out = {}
    pairs = obs[[LABEL_KEY, NAME_KEY]].astype(str).drop_duplicates()
    for term, sub in pairs.groupby(LABEL_KEY):
        names = sorted(sub[NAME_KEY])
        if len(names) == 1:
            out[term] = names[0]
        elif term in onto:
            out[term] = onto.label(term)
        else:
            out[term] = names[0]
    return out


def _balanced(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    pos = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        pos.extend(rng.permutation(idx)[:per_class])
    return np.sort(np.asarray(pos, dtype=int))


def _expand(F: sp.csr_matrix, mask: np.ndarray) -> sp.csr_matrix:
    """Columns of ``F`` placed at the ``True`` positions of ``mask`` (others empty)."""
    n = int(mask.sum())
    place = sp.csr_matrix(
        (np.ones(n, dtype=np.float32), (np.arange(n), np.flatnonzero(mask))),
        shape=(n, len(mask)),
    )
    return sp.csr_matrix(F @ place)


def _training_matrix(ref: AnnData, panel: np.ndarray) -> sp.csr_matrix:
    """Reference rows over ``panel``: each study normalised over the genes it measured,
    unmeasured genes filled with the mean of the studies that measured them."""
    cols = ref.var_names.get_indexer(panel)
    counts = sp.csr_matrix(ref.X, dtype=np.float32)[:, cols]
    datasets = ref.obs["dataset"].astype(str).to_numpy()
    parts = []
    sums = np.zeros(len(panel))
    n_measured = np.zeros(len(panel))
    for d in np.unique(datasets):
        key = f"measured_in_{d}"
        mask = ref.var[key].to_numpy()[cols] if key in ref.var else np.ones(len(cols), bool)
        rows = np.flatnonzero(datasets == d)
        F = _expand(_log1p_over(counts[rows][:, mask]), mask)
        sums += np.asarray(F.sum(axis=0)).ravel()
        n_measured += mask * len(rows)
        parts.append((rows, F, mask))
    fill = np.divide(sums, n_measured, out=np.zeros_like(sums), where=n_measured > 0)
    fill = fill.astype(np.float32)
    blocks, positions = [], []
    for rows, F, mask in parts:
        missing = np.flatnonzero(~mask & (fill > 0))
        if len(missing):
            n = len(rows)
            F = F + sp.csr_matrix(
                (
                    np.tile(fill[missing], n),
                    (np.repeat(np.arange(n), len(missing)), np.tile(missing, n)),
                ),
                shape=F.shape,
            )
        blocks.append(F)
        positions.append(rows)
    stacked = sp.vstack(blocks).tocsr()
    return stacked[np.argsort(np.concatenate(positions))]


def fit_reference_model(
    ref: AnnData,
    panel,
    *,
    max_cells_per_class: int = 500,
    C: float = 0.1,
    seed: int = 0,
) -> ReferenceModel:
    """Fit the reference classifier on ``panel`` genes.

    Parameters
    ----------
    ref
        Labelled reference (raw counts; ``obs`` with ``cell_type_ontology_term_id``,
        ``cell_type`` and ``dataset``; ``var`` with ``measured_in_<dataset>``).
    panel
        Genes to use (all in ``ref.var_names``).
    max_cells_per_class
        Balanced sample: at most this many cells per class (bounds the fitting time).
    C
        Inverse L2 strength of the logistic regression.
    seed
        Seed of the sample and the solver.

    Returns
    -------
    The fitted model.
    """
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    panel = np.asarray(panel, dtype=str)
    y_all = ref.obs[LABEL_KEY].astype(str).to_numpy()
    rows = _balanced(y_all, max_cells_per_class, np.random.default_rng(seed))
    sub = ref[rows]
    y = y_all[rows]
    F = _training_matrix(sub, panel)
    terms = sorted(np.unique(y))
    if len(terms) == 1:  # one class: nothing to learn, everything is that class
        coef = np.zeros((1, len(panel)), dtype=np.float32)
        intercept = np.zeros(1, dtype=np.float32)
    else:
        model = LogisticRegression(C=C, max_iter=500, random_state=seed)
        model.fit(F, y)
        if len(terms) == 2:  # sklearn keeps one row (for classes_[1]) for two classes
            sign = 1.0 if list(model.classes_) == terms else -1.0
            w, b = sign * model.coef_[0], sign * model.intercept_[0]
            coef = np.vstack([-w, w]).astype(np.float32)
            intercept = np.array([-b, b], dtype=np.float32)
        else:
            order = [list(model.classes_).index(t) for t in terms]
            coef = model.coef_[order].astype(np.float32)
            intercept = model.intercept_[order].astype(np.float32)
    centroids = np.vstack([np.asarray(F[y == t].mean(axis=0)).ravel() for t in terms])
    names = class_names(sub.obs)
    counts = pd.Series(y).value_counts()
    info = {
        "recipe": RECIPE,
        "n_genes": len(panel),
        "n_cells": len(rows),
        "cells_per_class": {t: int(counts[t]) for t in terms},
        "C": C,
        "seed": seed,
        "fit_seconds": round(time.perf_counter() - t0, 2),
    }
    return ReferenceModel(
        panel, terms, [names[t] for t in terms], coef, intercept, centroids.astype(np.float32), info
    )


def _fingerprint(adata: AnnData) -> str:
    """A cheap identity of an in-memory reference (cells, labels, genes, values)."""
    h = hashlib.sha256()
    h.update("\n".join(adata.obs_names).encode())
    h.update("\n".join(adata.obs[LABEL_KEY].astype(str)).encode())
    h.update("\n".join(adata.var_names).encode())
    X = adata.X
    h.update(f"{X.shape}{getattr(X, 'nnz', 0)}{float(X.sum()):.6g}".encode())
    return "anndata-" + h.hexdigest()[:16]


def _panel(ref: AnnData, genes: np.ndarray) -> np.ndarray:
    """Query genes that the reference measured in at least one study, in query order."""
    flags = [c for c in ref.var.columns if c.startswith("measured_in_")]
    datasets = set(ref.obs["dataset"].astype(str)) if "dataset" in ref.obs else set()
    flags = [c for c in flags if c.removeprefix("measured_in_") in datasets] or flags
    known = ref.var_names[ref.var[flags].any(axis=1).to_numpy()] if flags else ref.var_names
    return genes[pd.Index(genes).isin(known)]


def reference_expert(
    X,
    genes,
    *,
    reference=None,
    tissue: str | None = None,
    cache: bool = True,
    max_cells_per_class: int = 500,
    C: float = 0.1,
    seed: int | None = None,
) -> ExpertCall:
    """Probabilities over the reference's classes from a classifier on the query's genes.

    Parameters
    ----------
    X
        Query cells x genes, log1p(CP10k) (the layer ``sa.pp.prepare`` writes).
    genes
        The query's gene symbols (current human symbols, as after ``sa.pp.prepare``).
    reference
        :class:`~scagent.memory.ReferenceData`, a labelled AnnData (raw counts; ``obs``
        ``cell_type_ontology_term_id``, ``cell_type``, ``tissue``, ``dataset``), or ``None``
        for the bundled reference.
    tissue
        Train on this tissue's reference cells only (``None``: all tissues).
    cache
        Reuse a model fitted earlier for the same reference, tissue and gene panel, and
        keep new ones, under ``sa.settings.data_dir / "cache" / "reference"``.
    max_cells_per_class, C, seed
        See :func:`fit_reference_model`.

    Returns
    -------
    The expert's call; ``info`` records the panel size, the cache key and hit, and times.

    Raises
    ------
    InputDataError
        When the query shares fewer than 50 genes with the reference or the tissue has no
        reference cells.
    """
    from ..memory import ReferenceData, reference_data

    t0 = time.perf_counter()
    seed = settings.seed if seed is None else seed
    if reference is None:
        reference = reference_data()
    if isinstance(reference, ReferenceData):
        ref, version = reference.adata, reference.version
    else:
        ref, version = reference, _fingerprint(reference)
    if tissue is not None:
        in_tissue = (ref.obs["tissue"].astype(str) == tissue).to_numpy()
        if not in_tissue.any():
            available = sorted(ref.obs["tissue"].astype(str).unique())
            msg = f"The reference has no cells of tissue {tissue!r}; it has {available}."
            raise InputDataError(msg)
        ref = ref[in_tissue]
    genes = np.asarray(genes, dtype=str)
    panel = _panel(ref, genes)
    if len(panel) < MIN_SHARED_GENES:
        msg = (
            f"The query shares only {len(panel)} genes with the reference; at least "
            f"{MIN_SHARED_GENES} are needed. Are the genes human symbols or Ensembl ids "
            "(sa.read recognises both)?"
        )
        raise InputDataError(msg)
    key = hashlib.sha256(
        json.dumps([RECIPE, version, tissue, max_cells_per_class, C, seed]).encode()
        + "\n".join(sorted(panel)).encode()
    ).hexdigest()[:24]
    path = settings.data_dir / "cache" / "reference" / key
    model = ReferenceModel.load(path) if cache else None
    hit = model is not None
    if model is None:
        logger.info("Fitting the reference expert on %d shared genes.", len(panel))
        model = fit_reference_model(
            ref, panel, max_cells_per_class=max_cells_per_class, C=C, seed=seed
        )
        model.info.update(reference=version, tissue=tissue)
        if cache:
            model.save(path)
    F = shared_log1p(X, genes, model.genes)
    probs = model.predict_proba(F)
    info = {
        "reference": version,
        "tissue": tissue,
        "n_genes": len(model.genes),
        "n_query_genes": len(genes),
        "cache_key": key,
        "cache_hit": hit,
        "fit_seconds": model.info.get("fit_seconds"),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return ExpertCall(
        "reference",
        probs,
        list(model.terms),
        list(model.names),
        info,
        {
            "reference_similarity": model.similarity(F),
            "panel_genes_detected": np.diff(F.indptr).astype(np.float32),
            "panel_genes": np.full(F.shape[0], len(model.genes), dtype=np.float32),
        },
    )


def class_self_similarity(
    reference, genes, *, per_class: int = 200, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """How similar each reference class's own cells are to their class centroid.

    On the genes the query shares with the reference (as the reference expert sees them):
    per class, the 5% quantile and the median of its cells' cosine similarity to the class
    centroid. A query cell below its class's 5% quantile is less like the class than 95% of
    the class's own cells.

    Parameters
    ----------
    reference
        :class:`~scagent.memory.ReferenceData` or a labelled AnnData.
    genes
        The query's gene symbols.
    per_class
        Reference cells sampled per class.
    seed
        Seed of the sample.
    """
    from ..memory import ReferenceData

    ref = reference.adata if isinstance(reference, ReferenceData) else reference
    panel = _panel(ref, np.asarray(genes, dtype=str))
    y_all = ref.obs[LABEL_KEY].astype(str).to_numpy()
    rows = _balanced(y_all, per_class, np.random.default_rng(seed))
    F = sp.csr_matrix(_training_matrix(ref[rows], panel))
    y = y_all[rows]
    out = {}
    norms = np.sqrt(np.asarray(F.multiply(F).sum(axis=1)).ravel())
    for t in np.unique(y):
        m = y == t
        c = np.asarray(F[m].mean(axis=0)).ravel()
        sim = np.asarray(F[m] @ c).ravel() / np.maximum(norms[m] * np.linalg.norm(c), 1e-12)
        out[str(t)] = (float(np.quantile(sim, 0.05)), float(np.median(sim)))
    return out
