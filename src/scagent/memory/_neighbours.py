"""The answer of a memory search: the k nearest known cells of every query cell."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["NEIGHBOUR_FIELDS", "Neighbours"]

#: Text fields returned for each neighbour.
NEIGHBOUR_FIELDS = (
    "cell_id",
    "cell_type",
    "cell_type_ontology_term_id",
    "tissue",
    "dataset",
    "plugin_version",
)


@dataclass
class Neighbours:
    """The ``k`` nearest stored cells of each query cell in one space.

    Attributes
    ----------
    space
        ``"pretrained"`` or ``"tuned"``.
    distance
        (queries, k) cosine distances ``1 - similarity``, nearest first; NaN where fewer
        than ``k`` stored cells matched the filter (or the query was not searched).
    fields
        For each of :data:`NEIGHBOUR_FIELDS`, a (queries, k) array of strings (``""``
        where ``distance`` is NaN).
    """

    space: str
    distance: np.ndarray
    fields: dict[str, np.ndarray]

    @classmethod
    def empty(cls, space: str, n: int, k: int) -> Neighbours:
        """No neighbours for ``n`` queries (yet)."""
        return cls(
            space,
            np.full((n, k), np.nan, dtype=np.float32),
            {f: np.full((n, k), "", dtype=object) for f in NEIGHBOUR_FIELDS},
        )

    def __getitem__(self, field: str) -> np.ndarray:
        return self.fields[field]

    @property
    def k(self) -> int:
        """Neighbours per query."""
        return self.distance.shape[1]

    def to_frame(self, query_ids=None) -> pd.DataFrame:
        """One row per (query, neighbour): ``query``, ``space``, ``rank``, ``distance``
        and the neighbour's fields; missing neighbours are left out."""
        n = self.distance.shape[0]
        query_ids = np.arange(n).astype(str) if query_ids is None else np.asarray(query_ids)
        found = ~np.isnan(self.distance)
        q, r = np.nonzero(found)
        frame = pd.DataFrame(
            {
                "query": query_ids[q],
                "space": self.space,
                "rank": r + 1,
                "distance": self.distance[q, r],
            }
        )
        for f, values in self.fields.items():
            frame[f] = values[q, r]
        return frame

    def summary(self, query_ids=None) -> pd.DataFrame:
        """Per query: the most frequent cell type among its neighbours, its share of the
        neighbours found, the nearest distance and the mean distance."""
        n = self.distance.shape[0]
        query_ids = np.arange(n).astype(str) if query_ids is None else np.asarray(query_ids)
        types, shares = [], []
        for i in range(n):
            found = self.fields["cell_type"][i][~np.isnan(self.distance[i])]
            if len(found) == 0:
                types.append("")
                shares.append(np.nan)
                continue
            values, counts = np.unique(found, return_counts=True)
            types.append(values[np.argmax(counts)])
            shares.append(counts.max() / len(found))
        found = ~np.isnan(self.distance)
        n_found = found.sum(axis=1)
        nearest = np.where(found, self.distance, np.inf).min(axis=1)
        nearest[n_found == 0] = np.nan
        total = np.where(found, self.distance, 0.0).sum(axis=1)
        mean = np.where(n_found > 0, total / np.maximum(n_found, 1), np.nan)
        return pd.DataFrame(
            {
                "query": query_ids,
                "space": self.space,
                "nearest_type": types,
                "share": shares,
                "nearest_distance": nearest,
                "mean_distance": mean,
            }
        )
