"""Tell what an expression matrix holds: counts, normalised, log-transformed (which log of
what) or scaled."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..io._validate import matrix_values

__all__ = ["CONTENTS", "COUNT_LIKE", "LOG_CONTENTS", "detect_content", "linear_values"]

#: Every content :func:`detect_content` reports, with what it means.
CONTENTS = {
    "counts": "raw counts (non-negative integers)",
    "noninteger_counts": "non-integer counts with unequal totals (e.g. Smart-seq2 expected "
    "counts, TPM)",
    "normalized": "values with equal totals per cell (e.g. CP10k, CPM)",
    "log1p_counts": "log1p of raw counts (not normalised)",
    "log2_counts": "log2(x + 1) of raw counts (not normalised)",
    "log1p_normalized": "log1p of equal-total values (e.g. log1p(CP10k), log1p(CPM))",
    "log2_normalized": "log2(x + 1) of equal-total values (e.g. log2(CPM + 1))",
    "log1p": "log-scale values that are neither log1p nor log2(x + 1) of counts or of "
    "equal-total values (e.g. a gene subset after normalisation)",
    "scaled": "values with negatives (z-scored or regressed data)",
}

#: Contents normalised by total counts before log1p.
COUNT_LIKE = ("counts", "noninteger_counts", "normalized")
#: Log-scale contents, and the inverse of the log each one went through.
LOG_CONTENTS = {
    "log1p_counts": np.expm1,
    "log1p_normalized": np.expm1,
    "log2_counts": lambda x: np.exp2(x) - 1,
    "log2_normalized": lambda x: np.exp2(x) - 1,
}

_LOG_MAX = 30.0  # log1p of a count per million is below 14; counts rarely stay this low
_EQUAL_TOTALS = 1e-3  # coefficient of variation of per-cell totals below which they are equal
_INTEGER_SHARE = 0.999  # share of back-transformed values that must be whole numbers
_INTEGER_UP_TO = 1000.0  # whole numbers are checked among values up to this (float32 precision)


def _row_sums(X) -> np.ndarray:
    return np.asarray(X.sum(axis=1)).ravel()


def _sample_rows(X, n: int = 2000):
    if X.shape[0] <= n:
        return X
    idx = np.linspace(0, X.shape[0] - 1, n).astype(int)
    return X[idx]


def _apply(X, func):
    """``func`` of the stored values of a matrix (zeros stay zero), as float64."""
    if sp.issparse(X):
        out = sp.csr_matrix(X, dtype=np.float64, copy=True)
        out.data = func(out.data)
        return out
    return func(np.asarray(X, dtype=np.float64))


def _whole_numbers(values: np.ndarray) -> bool:
    """Whether (nearly) all values are whole numbers, allowing float32 rounding."""
    values = values[(values > 0) & (values <= _INTEGER_UP_TO)]
    if values.size == 0:
        return False
    tol = 1e-3 + 2e-6 * values  # float32 log values carry a relative error of about 5e-7
    return np.mean(np.abs(values - np.round(values)) <= tol) >= _INTEGER_SHARE


def _equal_totals(X) -> bool:
    sums = _row_sums(X)
    sums = sums[sums > 0]
    return bool(sums.size) and sums.std() / sums.mean() < _EQUAL_TOTALS


def detect_content(X) -> str:
    """Classify the values of an expression matrix.

    Log-scale values (all below 30) are transformed back with ``expm1`` and with
    ``2 ** x - 1``: whole numbers mean log of raw counts, equal totals per cell mean log of
    normalised values. The checks use up to 2,000 cells spread over the matrix.

    Parameters
    ----------
    X
        Dense or sparse cells x genes matrix.

    Returns
    -------
    One of the keys of :data:`CONTENTS`: ``"counts"``, ``"noninteger_counts"``,
    ``"normalized"``, ``"log1p_counts"``, ``"log2_counts"``, ``"log1p_normalized"``,
    ``"log2_normalized"``, ``"log1p"`` (another log scale: kept as it is) or ``"scaled"``.
    """
    values = matrix_values(X)
    if values.size and values.min() < 0:
        return "scaled"
    sub = _sample_rows(X)
    sv = matrix_values(sub)
    if np.all(sv == np.round(sv)):
        return "counts"
    if sv.max() <= _LOG_MAX:
        linear = {name: _apply(sub, LOG_CONTENTS[name]) for name in ("log1p_counts", "log2_counts")}
        for name, lin in linear.items():
            if _whole_numbers(matrix_values(lin)):
                return name
        for name, lin in linear.items():
            if _equal_totals(lin):
                return name.replace("_counts", "_normalized")
        return "log1p"
    if _equal_totals(sub):
        return "normalized"
    return "noninteger_counts"


def linear_values(X, content: str) -> np.ndarray | sp.csr_matrix:
    """Undo the log of log-scale content (:data:`LOG_CONTENTS`), as a float64 matrix.

    Parameters
    ----------
    X
        Cells x genes matrix whose content is one of :data:`LOG_CONTENTS`.
    content
        What ``X`` holds.

    Returns
    -------
    The values before the log; for ``"log1p_counts"`` and ``"log2_counts"`` rounded to the
    counts they were.
    """
    lin = _apply(X, LOG_CONTENTS[content])
    if content.endswith("_counts"):
        if sp.issparse(lin):
            lin.data = np.round(lin.data)
        else:
            lin = np.round(lin)
    return lin
