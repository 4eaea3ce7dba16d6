"""The open-set signal: is a cell rejected by every known class's own acceptance region?

DOC's rule (Shu et al. 2017), fitted on the reference cells of the query's tissue: one
one-vs-rest logistic model per reference class on standardised log1p(CP10k) of the
reference's most variable genes among those the query measured. Each class accepts
a cell whose probability reaches the class's own threshold ``max(0.5, 1 - 3 sigma)``, where
sigma is the spread of the class's cells' probabilities mirrored around 1. Unlike DOC,
sigma comes from cells of the class held out of fitting (:data:`HELD_OUT`): a model that
nearly separates its training cells gives them probabilities near 1, a threshold too high
for new cells of the same type. A cell no class accepts is *rejected*. Cells called as a
class with fewer than :data:`MIN_CLASS_CELLS` reference cells are not judged (NaN): such a
class cannot hold out enough cells to set its own threshold from, so it has no reliable
acceptance region. Nor are cells called as a type learnt with ``add_cell_type`` (its cells'
``obs["dataset"]`` is ``"learnt-types"``): a few dozen cells of one or two donors describe
those donors, and the other donors' cells of the type fall outside (the incremental
benchmark: half of the held-out patients' malignant cells after learning from 20 or 30);
the user has named the type, and the judge and the markers still read those cells.
scagent reads this per cluster, relative to the rest of the query
(:mod:`~scagent.novelty._decide`).

Fitted models are cached as ``.npz`` (never a pickle) under
``sa.settings.data_dir / "cache" / "openset"``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .._files import atomic_file
from .._settings import settings

__all__ = ["OneVsRest", "fit_one_vs_rest", "open_set_rejected"]

logger = logging.getLogger("scagent")

#: Version of the fitting recipe; part of every cache key.
RECIPE = "doc-ovr-v3"
#: Sigmas below 1 a class's acceptance threshold sits (DOC's alpha).
ALPHA = 3.0
#: Most variable genes the models read, and reference cells per class they learn from.
N_GENES, PER_CLASS = 2000, 400
#: Share of each class's cells that sets its threshold instead of training the model.
HELD_OUT = 0.3
#: Held-out cells a class's threshold needs (as many as a candidate group needs cells) ...
MIN_HELD_OUT = 5
#: ... hence the reference cells a class needs before cells called as it are judged (17).
MIN_CLASS_CELLS = int(np.ceil(MIN_HELD_OUT / HELD_OUT))


@dataclass
class OneVsRest:
    """One-vs-rest logistic models with per-class acceptance thresholds.

    Attributes
    ----------
    coef, intercept
        (classes, features) and (classes,) of the models on standardised features.
    threshold
        (classes,) probability each class needs to accept a cell.
    mean, scale
        Standardisation of the features (``None``: the input is standardised already).
    """

    coef: np.ndarray
    intercept: np.ndarray
    threshold: np.ndarray
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def probabilities(self, X) -> np.ndarray:
        """(cells, classes) one-vs-rest probabilities of feature rows ``X``."""
        X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float32)
        if self.mean is not None:
            X = (X - self.mean) / self.scale
        z = X @ self.coef.T + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def rejected(self, X, *, chunk: int = 4096) -> np.ndarray:
        """Whether no class accepts each row of ``X``."""
        out = np.empty(X.shape[0], dtype=bool)
        for s in range(0, X.shape[0], chunk):
            out[s : s + chunk] = ~(self.probabilities(X[s : s + chunk]) >= self.threshold).any(1)
        return out


def fit_one_vs_rest(
    X,
    y,
    *,
    alpha: float = ALPHA,
    C: float = 1.0,
    standardise: bool = False,
    held_out: float = 0.0,
    seed: int = 0,
) -> OneVsRest:
    """Fit DOC's one-vs-rest models and thresholds.

    Parameters
    ----------
    X
        (cells, features) training rows.
    y
        Class of each row (at least two classes).
    alpha
        Threshold of class ``c``: ``max(0.5, 1 - alpha * sigma_c)``.
    C
        Inverse L2 strength of each logistic regression.
    standardise
        Standardise the features first (and every later input the same way).
    held_out
        Share of each class's cells kept out of fitting to set the thresholds from (``0``:
        DOC's original rule, thresholds from the training cells themselves, which sit
        too high when a model nearly separates its training cells).
    seed
        Seed of the split and the solver.
    """
    from sklearn.linear_model import LogisticRegression

    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float32)
    y = np.asarray(y).astype(str)
    mean = scale = None
    if standardise:
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
        X = (X - mean) / scale
    classes = np.unique(y)
    if len(classes) < 2:
        msg = "The one-vs-rest models need at least two classes."
        raise ValueError(msg)
    fit = np.ones(len(y), dtype=bool)
    if held_out > 0:
        rng = np.random.default_rng(seed)
        for c in classes:
            idx = rng.permutation(np.flatnonzero(y == c))
            n_out = round(held_out * len(idx)) if len(idx) >= 4 else 0
            fit[idx[:n_out]] = False
    coef, intercept, threshold = [], [], []
    for c in classes:
        model = LogisticRegression(max_iter=300, C=C, random_state=seed)
        model.fit(X[fit], y[fit] == c)
        own_rows = (y == c) & (~fit if (~fit & (y == c)).any() else fit)
        own = model.predict_proba(X[own_rows])[:, 1]
        sigma = float(np.std(np.concatenate([own, 2 - own])))
        coef.append(model.coef_[0])
        intercept.append(model.intercept_[0])
        threshold.append(max(0.5, 1 - alpha * sigma))
    return OneVsRest(
        np.asarray(coef, dtype=np.float32),
        np.asarray(intercept, dtype=np.float32),
        np.asarray(threshold, dtype=np.float32),
        mean,
        scale,
    )


def _variable(F: sp.csr_matrix, n: int) -> np.ndarray:
    """Columns of the ``n`` largest variances (in column order)."""
    mean = np.asarray(F.mean(axis=0)).ravel()
    var = np.asarray(F.multiply(F).mean(axis=0)).ravel() - mean**2
    return np.sort(np.argsort(-var)[:n])


def _save(path: Path, panel: np.ndarray, cols: np.ndarray, model: OneVsRest) -> None:
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            panel=panel.astype(str),
            cols=cols.astype(np.int64),
            coef=model.coef,
            intercept=model.intercept,
            threshold=model.threshold,
            mean=model.mean,
            scale=model.scale,
        )


def _load(path: Path) -> tuple[np.ndarray, np.ndarray, OneVsRest] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            model = OneVsRest(z["coef"], z["intercept"], z["threshold"], z["mean"], z["scale"])
            return z["panel"], z["cols"], model
    except (OSError, ValueError, KeyError):
        return None


def _unjudged_classes(ref, tissue: str) -> set[str]:
    """Classes of the tissue with fewer than :data:`MIN_CLASS_CELLS` reference cells, or
    learnt with ``add_cell_type``."""
    from ..experts._reference import LABEL_KEY
    from ..memory._learnt import LEARNT

    obs = ref.obs if not tissue else ref.obs[ref.obs["tissue"].astype(str) == tissue]
    labels = obs[LABEL_KEY].astype(str)
    counts = labels.value_counts()
    out = set(counts[counts < MIN_CLASS_CELLS].index)
    if "dataset" in obs:
        out |= set(labels[(obs["dataset"].astype(str) == LEARNT).to_numpy()])
    return out


def _fitted(ref, version: str, tissue: str, genes: np.ndarray, seed: int):
    """The (cached) models of one tissue's reference cells over the query's genes."""
    from ..experts._reference import LABEL_KEY, _balanced, _panel, _training_matrix

    in_tissue = (ref.obs["tissue"].astype(str) == tissue).to_numpy() if tissue else None
    sub = ref if in_tissue is None else ref[in_tissue]
    y_all = sub.obs[LABEL_KEY].astype(str).to_numpy()
    if len(np.unique(y_all)) < 2:
        return None
    panel = _panel(sub, genes)
    key = hashlib.sha256(
        json.dumps([RECIPE, version, tissue, N_GENES, PER_CLASS, seed]).encode()
        + "\n".join(sorted(panel)).encode()
    ).hexdigest()[:24]
    path = settings.data_dir / "cache" / "openset" / f"{key}.npz"
    found = _load(path)
    if found is not None:
        return found
    rows = _balanced(y_all, PER_CLASS, np.random.default_rng(seed))
    F = sp.csr_matrix(_training_matrix(sub[rows], panel))
    cols = _variable(F, N_GENES)
    logger.info("Fitting the open-set models of %s on %d genes.", tissue or "all", len(cols))
    model = fit_one_vs_rest(F[:, cols], y_all[rows], standardise=True, held_out=HELD_OUT, seed=seed)
    _save(path, panel, cols, model)
    return panel, cols, model


def open_set_rejected(
    X_log1p, genes, tissues, *, reference, version: str, calls=None, seed: int = 0
) -> np.ndarray:
    """Per query cell: 1.0 when no reference class of its tissue accepts it, else 0.0.

    Parameters
    ----------
    X_log1p
        Query cells x genes, log1p(CP10k).
    genes
        The query's gene symbols.
    tissues
        Each cell's annotated tissue; cells of a tissue the reference lacks (or annotated
        across tissues) are judged against the whole reference.
    reference
        Labelled reference AnnData (raw counts, as the reference expert reads it).
    version
        Identity of the reference (part of the cache key).
    calls
        Each cell's called class (Cell Ontology id or ``name:<label>``): cells called as a
        class with fewer than :data:`MIN_CLASS_CELLS` reference cells, or learnt with
        ``add_cell_type``, are left NaN.
    seed
        Seed of the class-balanced sample and the solver.

    Returns
    -------
    Float per cell (NaN where a tissue's reference has fewer than two classes, or the
    cell's call is a class too small to judge by).
    """
    from ..experts._reference import shared_log1p

    genes = np.asarray(genes, dtype=str)
    tissues = np.asarray(tissues).astype(str)
    known = set(reference.obs["tissue"].astype(str))
    out = np.full(len(tissues), np.nan, dtype=np.float32)
    for t in np.unique(tissues):
        rows = np.flatnonzero(tissues == t)
        fitted = _fitted(reference, version, t if t in known else "", genes, seed)
        if fitted is None:
            continue
        panel, cols, model = fitted
        # normalised over the whole shared panel, as the training cells were
        F = shared_log1p(sp.csr_matrix(X_log1p)[rows], genes, panel)[:, cols]
        out[rows] = model.rejected(F)
        if calls is not None:
            small = _unjudged_classes(reference, t if t in known else "")
            out[rows[np.isin(np.asarray(calls, dtype=str)[rows], list(small))]] = np.nan
    return out
