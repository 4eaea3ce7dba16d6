"""The query's own structure: clusters and a neighbour graph from its own expression.

Experts judge clusters better than lone cells (a cell's profile is mostly dropout), and a
call can be smoothed over a cell's neighbours. Both come from the query alone, the way a
person would look at it first: log1p(CP10k) of its most variable genes, principal
components, a k-nearest-neighbour graph and Leiden clusters. Nothing here depends on the
reference, so the structure does not bend towards it.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

__all__ = ["QueryStructure", "query_structure"]


@dataclass
class QueryStructure:
    """Clusters and neighbour graph of a query.

    Attributes
    ----------
    clusters
        Cluster label of each cell (strings).
    graph
        (cells, cells) row-normalised k-nearest-neighbour weights (self excluded): row
        ``i`` averages over cell ``i``'s neighbours.
    pcs
        (cells, components) principal components the graph was built on.
    info
        JSON-serialisable record: genes, components, neighbours, resolution, seconds.
    """

    clusters: np.ndarray
    graph: sp.csr_matrix
    pcs: np.ndarray
    info: dict = field(default_factory=dict)


def _variable(X: sp.csr_matrix, n: int) -> np.ndarray:
    mean = np.asarray(X.mean(axis=0)).ravel()
    var = np.asarray(X.multiply(X).mean(axis=0)).ravel() - mean**2
    disp = np.where(mean > 0, var / np.maximum(mean, 1e-12), -np.inf)
    keep = np.flatnonzero(np.isfinite(disp))
    return np.sort(keep[np.argsort(-disp[keep], kind="stable")[:n]])


def _pcs(X: sp.csr_matrix, n_pcs: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    n_comp = max(1, min(n_pcs, X.shape[0] - 1, X.shape[1]))
    dense = X.toarray()
    dense -= dense.mean(axis=0)
    std = dense.std(axis=0)
    dense /= np.where(std > 0, std, 1.0)
    np.clip(dense, -10, 10, out=dense)
    return PCA(n_components=n_comp, random_state=seed).fit_transform(dense).astype(np.float32)


@contextmanager
def _igraph_seed(seed: int):
    import igraph

    igraph.set_random_number_generator(random.Random(seed))
    try:
        yield
    finally:
        igraph.set_random_number_generator(random)


def _leiden(idx: np.ndarray, resolution: float, seed: int) -> np.ndarray:
    import igraph

    n = idx.shape[0]
    pairs = np.stack([np.repeat(np.arange(n), idx.shape[1]), idx.ravel()], axis=1)
    pairs = np.unique(np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1), axis=0)
    g = igraph.Graph(n=n, edges=pairs.tolist())
    with _igraph_seed(seed):
        part = g.community_leiden(
            objective_function="modularity", resolution=resolution, n_iterations=2
        )
    return np.asarray(part.membership)


def query_structure(
    X,
    *,
    groups=None,
    n_top_genes: int = 2000,
    n_pcs: int = 30,
    n_neighbors: int = 15,
    resolution: float = 1.0,
    seed: int = 0,
) -> QueryStructure:
    """Clusters and a neighbour graph of the query's cells, from the query alone.

    Parameters
    ----------
    X
        (cells, genes) log1p(CP10k).
    groups
        Clusters the user already has (e.g. ``.obs['leiden']``); used instead of Leiden.
    n_top_genes
        Most variable genes (dispersion of log values) to compute components on.
    n_pcs
        Principal components of the z-scored (clipped at 10) variable genes.
    n_neighbors
        Neighbours per cell in the graph.
    resolution
        Leiden resolution (modularity).
    seed
        Seed of the components and of Leiden.

    Returns
    -------
    The structure (see :class:`QueryStructure`).
    """
    t0 = time.perf_counter()
    X = sp.csr_matrix(X, dtype=np.float32)
    n = X.shape[0]
    k = max(1, min(n_neighbors, n - 1))
    if n < 3:
        idx = np.array([[j for j in range(n) if j != i] or [i] for i in range(n)])
        pcs = np.zeros((n, 1), dtype=np.float32)
        n_genes = 0
    else:
        from sklearn.neighbors import NearestNeighbors

        genes = _variable(X, n_top_genes)
        n_genes = len(genes)
        pcs = _pcs(X[:, genes], n_pcs, seed)
        nn = NearestNeighbors(n_neighbors=k + 1).fit(pcs)
        idx = nn.kneighbors(pcs, return_distance=False)[:, 1:]
    rows = np.repeat(np.arange(n), idx.shape[1])
    graph = sp.csr_matrix(
        (np.full(rows.size, 1.0 / idx.shape[1], dtype=np.float32), (rows, idx.ravel())),
        shape=(n, n),
    )
    if groups is not None:
        clusters = np.asarray(groups).astype(str)
        how = "given"
    elif n < 30:
        clusters = np.zeros(n, dtype=int).astype(str)
        how = "one cluster (under 30 cells)"
    else:
        clusters = _leiden(idx, resolution, seed).astype(str)
        how = "leiden"
    info = {
        "clusters": how,
        "n_clusters": len(set(clusters)),
        "n_variable_genes": n_genes,
        "n_pcs": int(pcs.shape[1]),
        "n_neighbors": int(idx.shape[1]),
        "resolution": resolution,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return QueryStructure(clusters, graph, pcs, info)
