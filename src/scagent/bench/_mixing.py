"""Batch-mixing metric: the integration Local Inverse Simpson's Index (iLISI).

Implemented from the formula of Korsunsky et al. 2019 (Harmony, ``compute_simpson``), with
the scaling to ``[0, 1]`` used by scib (Luecken et al. 2022).
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

__all__ = ["ilisi"]

#: Iterations of the bandwidth search and its tolerance on the entropy (as in Harmony).
_N_ITER = 50
_TOL = 1e-5


def ilisi(
    X: np.ndarray,
    batch,
    *,
    perplexity: float = 30.0,
    n_neighbors: int | None = None,
    scale: bool = True,
) -> float:
    """Integration LISI: how many batches a cell's neighbourhood effectively holds.

    For every cell, the ``n_neighbors`` nearest other cells (Euclidean distance on ``X``)
    get Gaussian kernel weights whose bandwidth is set by binary search so that the
    entropy of the weights equals ``log(perplexity)``. The Simpson index is the sum over
    batches of the squared total weight of the neighbours in that batch; LISI is its
    inverse, between 1 (one batch only) and the number of batches (perfectly mixed).

    Parameters
    ----------
    X
        Embedding, cells x dimensions.
    batch
        Batch label of each cell (any hashable values); at least two distinct batches.
    perplexity
        Effective number of neighbours of the kernel.
    n_neighbors
        Neighbours per cell (the cell itself excluded); by default
        ``min(3 * perplexity, n_cells - 1)``. Capped at ``n_cells - 1``.
    scale
        Return ``(median - 1) / (n_batches - 1)``, in ``[0, 1]`` (1 = perfectly mixed),
        as scib does, instead of the raw median.

    Returns
    -------
    The median LISI over cells, scaled to ``[0, 1]`` when ``scale`` is true.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, holds NaN or infinite values, does not have one row per batch
        label, has fewer than two cells, if there are fewer than two batches, or if
        ``perplexity`` or ``n_neighbors`` is not positive.
    """
    if hasattr(X, "toarray"):
        X = X.toarray()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        msg = f"X must be a 2-D array (cells x dimensions); got shape {X.shape}."
        raise ValueError(msg)
    if not np.isfinite(X).all():
        msg = "X contains NaN or infinite values; iLISI needs a finite embedding."
        raise ValueError(msg)
    batch = np.asarray(batch)
    if batch.ndim != 1 or len(batch) != X.shape[0]:
        msg = f"batch has {batch.size} labels but X has {X.shape[0]} cells; they must match."
        raise ValueError(msg)
    n = X.shape[0]
    batches, codes = np.unique(batch.astype(str), return_inverse=True)
    n_batches = len(batches)
    if n_batches < 2:
        msg = f"iLISI needs at least 2 batches; got {n_batches}."
        raise ValueError(msg)
    if not perplexity > 0:
        msg = f"perplexity must be positive; got {perplexity}."
        raise ValueError(msg)
    if n_neighbors is None:
        n_neighbors = int(min(3 * perplexity, n - 1))
    elif n_neighbors < 1:
        msg = f"n_neighbors must be at least 1; got {n_neighbors}."
        raise ValueError(msg)
    k = max(1, min(int(n_neighbors), n - 1))

    # kneighbors() without a query excludes each point from its own neighbours.
    dist, idx = NearestNeighbors(n_neighbors=k).fit(X).kneighbors()
    weights = _perplexity_weights(dist, perplexity)

    # Simpson index: sum over batches of (weight of the neighbours in that batch)^2.
    flat = (np.arange(n)[:, None] * n_batches + codes[idx]).ravel()
    per_batch = np.bincount(flat, weights=weights.ravel(), minlength=n * n_batches)
    simpson = (per_batch.reshape(n, n_batches) ** 2).sum(axis=1)
    lisi = 1.0 / simpson
    median = float(np.median(lisi))
    # float rounding leaves LISI a few ulp off 1 when every neighbour is from one batch
    median = max(1.0, round(median, 10))
    if scale:
        return (median - 1.0) / (n_batches - 1)
    return median


def _perplexity_weights(dist: np.ndarray, perplexity: float) -> np.ndarray:
    """Row-normalised Gaussian kernel weights with entropy ``log(perplexity)`` per row.

    Parameters
    ----------
    dist
        Distances from each cell to its neighbours, cells x neighbours.
    perplexity
        Target effective number of neighbours.

    Returns
    -------
    Weights of the same shape as ``dist``, each row summing to 1.
    """
    n = dist.shape[0]
    # Entropy and normalised weights do not change when a row's distances are shifted, so
    # subtract the row minimum: the largest kernel value is 1 and the sum never underflows.
    d = dist - dist.min(axis=1, keepdims=True)
    log_u = np.log(perplexity)
    beta = np.ones(n)
    beta_min = np.full(n, -np.inf)
    beta_max = np.full(n, np.inf)

    def entropy(dd: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.exp(-dd * b[:, None])
        p_sum = p.sum(axis=1)
        h = np.log(p_sum) + b * (dd * p).sum(axis=1) / p_sum
        return h, p / p_sum[:, None]

    h, p = entropy(d, beta)
    for _ in range(_N_ITER):
        diff = h - log_u
        active = np.abs(diff) > _TOL
        if not active.any():
            break
        # Entropy too high: sharpen the kernel (raise beta); too low: widen it.
        up = active & (diff > 0)
        down = active & (diff <= 0)
        beta_min[up] = beta[up]
        beta_max[down] = beta[down]
        new = beta.copy()
        new[up] = np.where(np.isfinite(beta_max[up]), (beta[up] + beta_max[up]) / 2, beta[up] * 2)
        new[down] = np.where(
            np.isfinite(beta_min[down]), (beta[down] + beta_min[down]) / 2, beta[down] / 2
        )
        beta = new
        h_new, p_new = entropy(d[active], beta[active])
        h[active] = h_new
        p[active] = p_new
    return p
