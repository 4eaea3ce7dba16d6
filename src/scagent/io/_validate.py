"""Checks every input matrix passes before scagent uses it."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from .._errors import InputDataError

__all__ = ["matrix_values", "validate_adata"]


def matrix_values(X) -> np.ndarray:
    """The stored values of a dense or sparse matrix, as a flat array (no copy if sparse)."""
    if sp.issparse(X):
        return X.data
    return np.asarray(X).ravel()


def validate_adata(adata: AnnData, *, what: str = "the data") -> None:
    """Raise :class:`~scagent.InputDataError` for empty, non-finite or duplicated input.

    Parameters
    ----------
    adata
        The object to check (``X`` is checked).
    what
        How to name the object in messages, e.g. the file name.
    """
    if adata.n_obs == 0 or adata.n_vars == 0:
        msg = f"{what} is empty: {adata.n_obs} cells x {adata.n_vars} genes."
        raise InputDataError(msg)
    if adata.X is None:
        msg = (
            f"{what} has no expression matrix (.X is None); put the counts in .X, e.g. "
            "adata.X = adata.layers['counts']."
        )
        raise InputDataError(msg)
    values = matrix_values(adata.X)
    if values.size == 0 or not np.any(values):
        msg = f"{what} has {adata.n_obs} cells x {adata.n_vars} genes but every value is zero."
        raise InputDataError(msg)
    if values.dtype.kind not in "biuf":
        msg = f"{what} holds values of type {values.dtype}; expected numbers."
        raise InputDataError(msg)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        n_nan = int(np.isnan(values).sum())
        n_inf = int(np.isinf(values).sum())
        msg = (
            f"{what} contains {n_nan} NaN and {n_inf} infinite values. Expression must be finite: "
            "replace missing values with 0 (e.g. adata.X = np.nan_to_num(adata.X)) or give the "
            "raw counts."
        )
        raise InputDataError(msg)
    if not adata.obs_names.is_unique:
        dup = adata.obs_names[adata.obs_names.duplicated()].unique()
        msg = (
            f"{what} has {len(dup)} duplicated cell ids (e.g. {list(dup[:3])}). Make them "
            "unique first, e.g. adata.obs_names_make_unique(), or read with "
            "sa.read(..., make_unique=True)."
        )
        raise InputDataError(msg)
