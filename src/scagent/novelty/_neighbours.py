"""Where a query cell's nearest known cells come from: the Milvus memory, or exact search.

Novelty detection asks, for each suspected cell, for its ``k`` nearest stored cells in the
pretrained space (D_g) and in the tuned space (D_s), and for each class's centroid and
distance statistics. :class:`MemoryNeighbours` answers from the vector memory (Milvus);
:class:`ExactNeighbours` answers by brute force from embeddings in memory (benchmarks and
tests, where a reference changes per task). Both return the memory's
:class:`~scagent.memory.Neighbours` and :class:`~scagent.memory.ClassStats`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..memory import ClassStats, Neighbours
from ..memory._neighbours import NEIGHBOUR_FIELDS
from ..memory._stats import class_term, summarise

__all__ = ["ExactNeighbours", "MemoryNeighbours", "NeighbourSource"]


class NeighbourSource:
    """What novelty detection asks of a memory (see the module docstring)."""

    def search(self, space: str, vectors: np.ndarray, *, k: int, tissue=None) -> Neighbours:
        """The ``k`` nearest known cells of each vector (``tissue``: one per vector or one
        for all; tuned-space searches only compare cells of the same tissue's plugin)."""
        raise NotImplementedError

    def class_stats(self, space: str) -> ClassStats:
        """Per-class centroids and distance statistics."""
        raise NotImplementedError


class MemoryNeighbours(NeighbourSource):
    """The vector memory (:class:`~scagent.memory.VectorMemory`) of one encoder, searched
    among the cells of one stored dataset (``None``: every dataset)."""

    def __init__(self, memory, encoder: str, dataset: str | None = None) -> None:
        self.memory = memory
        self.encoder = encoder
        self.dataset = dataset

    def search(self, space, vectors, *, k, tissue=None):
        return self.memory.search(
            space,
            vectors,
            k=k,
            tissue=tissue if space == "tuned" else None,
            dataset=self.dataset,
            encoder=self.encoder,
        )

    def class_stats(self, space):
        return self.memory.class_stats(space, encoder=self.encoder)


class ExactNeighbours(NeighbourSource):
    """Brute-force cosine search over reference embeddings held in memory.

    Parameters
    ----------
    embeddings
        Space name to (cells, dim) reference embeddings (rows may be NaN: not in that space).
    obs
        The reference cells' ``obs`` (``tissue``, ``cell_type``, ``cell_type_ontology_term_id``
        and, optionally, ``dataset``).
    plugin_version
        Per reference cell, the plugin that embedded it in the tuned space.
    """

    def __init__(self, embeddings: dict[str, np.ndarray], obs: pd.DataFrame, plugin_version=None):
        self.obs = obs
        self.embeddings = {}
        for space, V in embeddings.items():
            V = np.asarray(V, dtype=np.float32)
            V = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
            self.embeddings[space] = V
        n = len(obs)
        self.fields = {
            "cell_id": np.asarray(obs.index, dtype=object),
            "cell_type": obs["cell_type"].astype(str).to_numpy(dtype=object),
            "cell_type_ontology_term_id": obs["cell_type_ontology_term_id"]
            .astype(str)
            .to_numpy(dtype=object),
            "tissue": obs["tissue"].astype(str).to_numpy(dtype=object),
            "dataset": obs["dataset"].astype(str).to_numpy(dtype=object)
            if "dataset" in obs
            else np.full(n, "", dtype=object),
            "plugin_version": np.asarray(plugin_version, dtype=object)
            if plugin_version is not None
            else np.full(n, "", dtype=object),
        }

    def search(self, space, vectors, *, k, tissue=None):
        R = self.embeddings[space]
        Q = np.asarray(vectors, dtype=np.float32)
        Q = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-12)
        out = Neighbours.empty(space, len(Q), k)
        ok = np.isfinite(R).all(axis=1)
        tissues = (
            np.full(len(Q), tissue, dtype=object)
            if tissue is None or isinstance(tissue, str)
            else np.asarray(tissue, dtype=object)
        )
        for t in pd.unique(tissues):
            rows = np.flatnonzero(tissues == t)
            cand = ok.copy()
            if space == "tuned" and t is not None:
                cand &= self.fields["tissue"] == t
            idx = np.flatnonzero(cand)
            if len(idx) == 0:
                continue
            for s in range(0, len(rows), 2048):
                part = rows[s : s + 2048]
                sim = Q[part] @ R[idx].T
                kk = min(k, len(idx))
                top = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
                order = np.take_along_axis(-sim, top, axis=1).argsort(axis=1)
                top = np.take_along_axis(top, order, axis=1)
                out.distance[part, :kk] = 1.0 - np.take_along_axis(sim, top, axis=1)
                for f in NEIGHBOUR_FIELDS:
                    out.fields[f][part, :kk] = self.fields[f][idx[top]]
        return out

    def class_stats(self, space):
        V = self.embeddings[space]
        ok = np.isfinite(V).all(axis=1)
        f = self.fields
        keys = pd.DataFrame(
            {
                "tissue": f["tissue"] if space == "tuned" else "",
                "plugin_version": f["plugin_version"] if space == "tuned" else "",
                "term": [
                    class_term(c, o)
                    for c, o in zip(f["cell_type"], f["cell_type_ontology_term_id"])
                ],
                "cell_type": f["cell_type"],
            }
        )[ok]
        rows, cents = [], []
        for (t, p, term), sub in keys.groupby(["tissue", "plugin_version", "term"], sort=True):
            pos = sub.index.to_numpy()  # positions among all reference cells
            centroid, rec = summarise(V[pos], f["dataset"][pos])
            rows.append(
                {
                    "tissue": t,
                    "plugin_version": p,
                    "encoder": "",
                    "term": term,
                    "cell_type": str(sub["cell_type"].iloc[0]),
                    "n": rec["n"],
                    "datasets": rec["datasets"],
                    **{k: v for k, v in rec["distance"].items() if k != "metric"},
                }
            )
            cents.append(centroid)
        dim = V.shape[1]
        return ClassStats(pd.DataFrame(rows), np.asarray(cents, dtype=np.float32).reshape(-1, dim))
