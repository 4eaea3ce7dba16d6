"""Majority voting over clusters (as CellTypist's ``majority_voting``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["majority_vote", "over_cluster"]


def majority_vote(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each cell gets the most frequent label of its group (ties: the alphabetically first)."""
    df = pd.DataFrame({"label": np.asarray(labels, dtype=str), "group": np.asarray(groups)})
    counts = df.groupby(["group", "label"], observed=True).size().reset_index(name="n")
    counts = counts.sort_values(["group", "n", "label"], ascending=[True, False, True])
    winner = counts.drop_duplicates("group").set_index("group")["label"]
    return df["group"].map(winner).to_numpy(dtype=object).astype(str)


def over_cluster(
    embedding: np.ndarray, *, resolution: float = 5.0, n_neighbors: int = 15, seed: int = 0
) -> np.ndarray:
    """Leiden clusters (igraph) of a kNN graph on ``embedding``, as strings.

    A high resolution gives many small clusters, so voting smooths noise without merging
    distinct types.
    """
    import anndata as ad
    import scanpy as sc

    n = embedding.shape[0]
    if n < 3:
        return np.zeros(n, dtype=int).astype(str)
    tmp = ad.AnnData(obs=pd.DataFrame(index=np.arange(n).astype(str)))
    tmp.obsm["X"] = np.asarray(embedding, dtype=np.float32)
    sc.pp.neighbors(tmp, use_rep="X", n_neighbors=min(n_neighbors, n - 1), random_state=seed)
    sc.tl.leiden(
        tmp,
        resolution=resolution,
        flavor="igraph",
        n_iterations=2,
        directed=False,
        random_state=seed,
    )
    return tmp.obs["leiden"].astype(str).to_numpy()
