"""Tell what an expression matrix holds: counts, normalised, log-normalised or scaled."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..io._validate import matrix_values

__all__ = ["COUNT_LIKE", "detect_content"]

#: Contents normalised by total counts before log1p.
COUNT_LIKE = ("counts", "noninteger_counts", "normalized")

_LOG_MAX = 30.0  # log1p of a count per million is below 14; counts rarely stay this low


def _row_sums(X) -> np.ndarray:
    return np.asarray(X.sum(axis=1)).ravel()


def _sample_rows(X, n: int = 2000):
    if X.shape[0] <= n:
        return X
    idx = np.linspace(0, X.shape[0] - 1, n).astype(int)
    return X[idx]


def detect_content(X) -> str:
    """Classify the values of an expression matrix.

    Parameters
    ----------
    X
        Dense or sparse cells x genes matrix.

    Returns
    -------
    One of ``"counts"`` (non-negative integers), ``"noninteger_counts"`` (e.g. Smart-seq2
    expected counts, TPM with varying totals), ``"normalized"`` (equal totals per cell,
    e.g. CP10k, CPM), ``"log1p_normalized"`` (log1p of equal-total values),
    ``"log1p"`` (log-scale values whose totals differ, e.g. after subsetting genes) or
    ``"scaled"`` (negative values: z-scored or regressed data).
    """
    values = matrix_values(X)
    if values.size and values.min() < 0:
        return "scaled"
    sub = _sample_rows(X)
    sv = matrix_values(sub)
    if np.all(sv == np.round(sv)):
        return "counts"
    sums = _row_sums(sub)
    sums = sums[sums > 0]
    if sv.max() <= _LOG_MAX:
        lin = sub.copy()
        if sp.issparse(lin):
            lin.data = np.expm1(lin.data)
        else:
            lin = np.expm1(lin)
        lsums = _row_sums(lin)
        lsums = lsums[lsums > 0]
        if lsums.size and lsums.std() / lsums.mean() < 1e-3:
            return "log1p_normalized"
        return "log1p"
    if sums.size and sums.std() / sums.mean() < 1e-3:
        return "normalized"
    return "noninteger_counts"
