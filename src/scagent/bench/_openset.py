"""Open-set peers for novel-cell detection, as the paper compares (its Fig. 3).

Every peer is trained on the same reference cells (log1p(CP10k) of the genes the query
measured, at most :data:`MAX_PER_CLASS` cells per class) and flags query cells as novel:

* **threshold**: multinomial logistic regression, novel when the top softmax probability is
  below 0.5 (Hendrycks and Gimpel 2017);
* **OpenMax** (Bendale and Boult 2016): the same classifier's logits as activation vectors,
  a Weibull model of each class's distances to its mean activation vector (tail of 20), the
  top 3 logits recalibrated and an "unknown" logit; novel when unknown wins or the top
  probability is below 0.5;
* **DOC** (Shu et al. 2017): one-vs-rest sigmoid classifiers, each with its own threshold
  ``max(0.5, 1 - 3 sigma)`` from its class's training probabilities mirrored around 1;
  novel when no class passes its threshold;
* **CellTypist prob match**: CellTypist 1.7's custom model in ``mode="prob match"``
  (``p_thres`` 0.5): cells no class passes are "Unassigned".
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import weibull_min
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ._peers import _quiet

__all__ = ["MAX_PER_CLASS", "OPEN_SET_PEERS", "open_set_flags"]

#: Reference cells per class the peers train on (as scagent's reference expert).
MAX_PER_CLASS = 500
OPEN_SET_PEERS = ("threshold (max softmax)", "OpenMax", "DOC", "CellTypist prob match")
TAIL = 20
ALPHA = 3


def _balanced(labels: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rows.append(rng.permutation(idx)[:MAX_PER_CLASS])
    return np.sort(np.concatenate(rows))


def _openmax(model, Z_train, y_train, Z_query) -> np.ndarray:
    """Flags from OpenMax on logits ``Z`` (cells x classes)."""
    classes = list(model.classes_)
    correct = Z_train.argmax(1) == np.array([classes.index(c) for c in y_train])
    mav, fits = [], []
    for c in classes:
        rows = (y_train == c) & correct
        if rows.sum() < 2:
            rows = y_train == c
        m = Z_train[rows].mean(axis=0)
        d = np.linalg.norm(Z_train[rows] - m, axis=1)
        tail = np.sort(d)[-TAIL:]
        with warnings.catch_warnings():
            # a class of few, near-identical distances: scipy warns while guessing the
            # fit's starting shape (from the skew); the maximum-likelihood fit is still made
            warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
            shape, _, scale = weibull_min.fit(tail, floc=0)
        mav.append(m)
        fits.append((shape, scale))
    mav = np.vstack(mav)
    alpha = min(ALPHA, len(classes))
    flags = np.zeros(len(Z_query), dtype=bool)
    for r, z in enumerate(Z_query):
        order = np.argsort(z)[::-1][:alpha]
        z2 = z.copy()
        unknown = 0.0
        for rank, i in enumerate(order):
            w = (alpha - rank) / alpha
            d = np.linalg.norm(z - mav[i])
            cdf = weibull_min.cdf(d, fits[i][0], loc=0, scale=fits[i][1])
            z2[i] = z[i] * (1 - w * cdf)
            unknown += z[i] - z2[i]
        logits = np.append(z2, unknown)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        flags[r] = p.argmax() == len(classes) or p.max() < 0.5
    return flags


def _doc(X_train, y_train, X_query, seed: int) -> np.ndarray:
    """Flags from DOC's one-vs-rest sigmoids with per-class Gaussian thresholds (the same
    models scagent's open-set signal uses, :func:`scagent.novelty.fit_one_vs_rest`)."""
    from ..novelty import fit_one_vs_rest

    return fit_one_vs_rest(X_train, y_train, seed=seed).rejected(X_query)


def _celltypist(X_train, y_train, X_query, genes) -> np.ndarray:
    import celltypist
    from anndata import AnnData

    train = AnnData(X=X_train, obs={"label": y_train})
    train.var_names = genes
    query = AnnData(X=X_query.copy())
    query.var_names = genes
    with _quiet():
        model = celltypist.train(
            train, labels="label", n_jobs=1, check_expression=False, max_iter=300
        )
        result = celltypist.annotate(
            query, model=model, mode="prob match", p_thres=0.5, majority_voting=False
        )
    return result.predicted_labels["predicted_labels"].astype(str).to_numpy() == "Unassigned"


def open_set_flags(
    X_train, y_train: np.ndarray, X_query, genes, *, seed: int = 0
) -> dict[str, np.ndarray]:
    """Each peer's novel flags for the query cells.

    Parameters
    ----------
    X_train, X_query
        log1p(CP10k) of the same genes (dense or sparse), reference and query.
    y_train
        Reference labels.
    genes
        The genes (CellTypist needs names).
    seed
        Seed of the class-balanced sample and the solvers.
    """
    y_train = np.asarray(y_train).astype(str)
    rows = _balanced(y_train, seed)
    Xt = X_train[rows]
    Xt = Xt.toarray() if hasattr(Xt, "toarray") else np.asarray(Xt)
    Xq = X_query.toarray() if hasattr(X_query, "toarray") else np.asarray(X_query)
    yt = y_train[rows]
    scaler = StandardScaler().fit(Xt)
    St, Sq = scaler.transform(Xt), scaler.transform(Xq)
    model = LogisticRegression(max_iter=500, C=0.1, random_state=seed).fit(St, yt)
    flags = {"threshold (max softmax)": model.predict_proba(Sq).max(axis=1) < 0.5}
    Zt, Zq = model.decision_function(St), model.decision_function(Sq)
    if Zt.ndim == 1:  # two classes: sklearn keeps one logit
        Zt, Zq = np.column_stack([-Zt, Zt]), np.column_stack([-Zq, Zq])
    flags["OpenMax"] = _openmax(model, Zt, yt, Zq)
    flags["DOC"] = _doc(St, yt, Sq, seed)
    flags["CellTypist prob match"] = _celltypist(Xt, yt, Xq, np.asarray(genes))
    return flags
