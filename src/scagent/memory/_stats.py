"""Per-class centroids and distance statistics of one space, for the outlier tool.

A class is a cell type (its Cell Ontology id, or ``name:<label>`` for names without one)
within one tissue, plugin version and encoder: tuned embeddings of different tissue
plugins live in different spaces, and so do embeddings of different encoders. For each
class the memory keeps the centroid (mean of the unit vectors) and the cosine distances of
its cells to the centroid: mean, standard deviation, quantiles and maximum.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["QUANTILES", "ClassStats", "class_key", "class_term", "stats_frame", "summarise"]

#: Quantiles of the cell-to-centroid cosine distance kept per class.
QUANTILES = (0.5, 0.9, 0.95, 0.99)


def class_term(cell_type: str, ontology_id: str) -> str:
    """A class's identity: its Cell Ontology id, or ``name:<cell type>`` without one."""
    return ontology_id or f"name:{cell_type}"


def class_key(tissue: str, plugin_version: str, encoder: str, term: str) -> str:
    """Primary key of a class-statistics row (a hash: plain characters only)."""
    text = json.dumps([tissue, plugin_version, encoder, term], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def summarise(vectors: np.ndarray, datasets: np.ndarray) -> tuple[np.ndarray, dict]:
    """Centroid and cosine-distance statistics of one class's unit vectors.

    Returns
    -------
    The centroid (mean vector, not renormalised) and a JSON-able record: ``n``,
    ``datasets`` (cells per dataset) and ``distance`` (``metric``, ``mean``, ``std``,
    ``q50``, ``q90``, ``q95``, ``q99``, ``max``).
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    centroid = vectors.mean(axis=0)
    norm = np.linalg.norm(centroid)
    unit = centroid / norm if norm > 0 else centroid
    dist = np.clip(1.0 - vectors @ unit, 0.0, 2.0)
    record = {
        "n": len(vectors),
        "datasets": {str(k): int(v) for k, v in pd.Series(datasets).value_counts().items()},
        "distance": {
            "metric": "cosine",
            "mean": float(dist.mean()),
            "std": float(dist.std()),
            **{f"q{round(q * 100)}": float(np.quantile(dist, q)) for q in QUANTILES},
            "max": float(dist.max()),
        },
    }
    return centroid.astype(np.float32), record


def stats_frame(rows: list[dict]) -> tuple[pd.DataFrame, np.ndarray]:
    """Class-statistics rows from Milvus as a table (one row per class) and centroids."""
    columns = ["tissue", "plugin_version", "encoder", "term", "cell_type", "n"]
    if not rows:
        names = [*columns, "datasets", "mean", "std", *(f"q{round(q * 100)}" for q in QUANTILES)]
        return pd.DataFrame(columns=[*names, "max"]), np.zeros((0, 0), np.float32)
    rows = sorted(rows, key=lambda r: (r["tissue"], r["plugin_version"], r["cell_type"], r["key"]))
    records = []
    for r in rows:
        s = json.loads(r["stats"])
        records.append(
            {
                **{c: r[c] for c in columns},
                "datasets": s["datasets"],
                **{k: v for k, v in s["distance"].items() if k != "metric"},
            }
        )
    centroids = np.asarray([r["vector"] for r in rows], dtype=np.float32)
    return pd.DataFrame(records), centroids


@dataclass
class ClassStats:
    """Per-class statistics of one space (see :meth:`VectorMemory.class_stats`).

    Attributes
    ----------
    table
        One row per class.
    centroids
        (classes, dim) centroids, in the order of ``table``.
    """

    table: pd.DataFrame
    centroids: np.ndarray
