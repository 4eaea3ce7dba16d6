"""Keeping each space's per-class statistics in step with its rows.

After every insert the classes the new cells joined are updated: a new class from the
inserted vectors, a class that already had cells from all its rows read back. After a
delete the touched classes are recomputed from what is left (or removed). A crash between
writing rows and statistics is detected by :meth:`VectorMemory.stats_in_step` (row count
against the classes' counts) and repaired by :func:`refresh`.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ._config import Space
from ._schema import expression, literal
from ._stats import class_key, class_term, summarise

__all__ = ["class_rows", "iterate", "recompute", "refresh", "stats_rows", "update_after_insert"]

_ITER_BATCH = 4096  # rows per page when reading a collection back
_STATS_FIELDS = ["key", "tissue", "plugin_version", "encoder", "term", "cell_type", "n", "stats"]


def iterate(db, collection: str, expr: str, fields: list[str]):
    """Pages of rows matching ``expr``: one query on Milvus Lite (no result limit there),
    an iterator on a server (which caps a query at 16,384 rows)."""
    if db.is_lite:
        yield db.client.query(collection, filter=expr, output_fields=fields)
        return
    it = db.client.query_iterator(
        collection, batch_size=_ITER_BATCH, filter=expr, output_fields=fields
    )
    try:
        while batch := it.next():
            yield batch
    finally:
        it.close()


def stats_rows(db, sp: Space, expr: str = "", *, vectors: bool = False) -> list[dict]:
    """The statistics rows of ``sp`` matching ``expr`` (with centroids if ``vectors``)."""
    if not db.client.has_collection(sp.stats_collection):
        return []
    fields = _STATS_FIELDS + (["vector"] if vectors else [])
    return [r for batch in iterate(db, sp.stats_collection, expr, fields) for r in batch]


def datasets_of(row: dict) -> dict:
    """Cells per dataset of a statistics row."""
    return json.loads(row["stats"]).get("datasets", {})


def class_rows(db, sp: Space, tissue: str, plugin_version: str, encoder: str, term: str):
    """Unit vectors, datasets and cell-type names of one class, read back from the rows."""
    expr = expression(tissue=tissue, plugin_version=plugin_version, encoder=encoder)
    if term.startswith("name:"):
        cond = expression(cell_type=term[5:], cell_type_ontology_term_id="")
    else:
        cond = f"cell_type_ontology_term_id == {literal(term)}"
    vecs, datasets, names = [], [], []
    fields = ["vector", "dataset", "cell_type"]
    for batch in iterate(db, sp.collection, f"{expr} and {cond}", fields):
        vecs.extend(r["vector"] for r in batch)
        datasets.extend(r["dataset"] for r in batch)
        names.extend(r["cell_type"] for r in batch)
    return np.asarray(vecs, dtype=np.float32), np.asarray(datasets), np.asarray(names)


def _write(db, sp: Space, groups: list[tuple], delete_keys: list[str]) -> None:
    """Upsert the statistics of ``groups`` ((class, vectors, datasets, names) tuples) and
    delete the rows of ``delete_keys``."""
    if delete_keys:
        db.client.delete(
            sp.stats_collection, filter=f"key in [{', '.join(map(literal, delete_keys))}]"
        )
    rows = []
    for (tissue, plugin_version, encoder, term), V, datasets, names in groups:
        centroid, record = summarise(V, datasets)
        values, counts = np.unique(names, return_counts=True)
        rows.append(
            {
                "key": class_key(tissue, plugin_version, encoder, term),
                "vector": centroid,
                "n": record["n"],
                "tissue": tissue,
                "plugin_version": plugin_version,
                "encoder": encoder,
                "term": term,
                "cell_type": str(values[np.argmax(counts)]),
                "stats": json.dumps(record),
            }
        )
    for start in range(0, len(rows), 500):
        db.client.upsert(sp.stats_collection, rows[start : start + 500])


def update_after_insert(db, sp: Space, meta: pd.DataFrame, V: np.ndarray) -> None:
    """Statistics of the classes the inserted cells (``meta``, ``V``) joined."""
    terms = [
        class_term(t, o) for t, o in zip(meta["cell_type"], meta["cell_type_ontology_term_id"])
    ]
    meta = meta.assign(term=terms)
    index = meta.groupby(["tissue", "plugin_version", "encoder", "term"], sort=True).indices
    keys = ", ".join(literal(class_key(*g)) for g in index)
    known = {r["key"] for r in stats_rows(db, sp, f"key in [{keys}]")}
    datasets, names = meta["dataset"].to_numpy(), meta["cell_type"].to_numpy()
    groups = []
    for g, rows in index.items():
        if class_key(*g) in known:
            groups.append((g, *class_rows(db, sp, *g)))
        else:
            groups.append((g, V[rows], datasets[rows], names[rows]))
    _write(db, sp, groups, [])


def recompute(db, sp: Space, rows: list[dict]) -> None:
    """Recompute the classes of statistics ``rows`` from their cells (drop emptied ones)."""
    groups, gone = [], []
    for r in rows:
        g = (r["tissue"], r["plugin_version"], r["encoder"], r["term"])
        V, datasets, names = class_rows(db, sp, *g)
        if len(V):
            groups.append((g, V, datasets, names))
        else:
            gone.append(r["key"])
    _write(db, sp, groups, gone)


def refresh(db, sp: Space) -> int:
    """Recompute every class of ``sp`` from its rows; returns the number of classes."""
    fields = ["tissue", "plugin_version", "encoder", "cell_type", "cell_type_ontology_term_id"]
    seen = set()
    for batch in iterate(db, sp.collection, "", fields):
        for r in batch:
            term = class_term(r["cell_type"], r["cell_type_ontology_term_id"])
            seen.add((r["tissue"], r["plugin_version"], r["encoder"], term))
    groups = [(g, *class_rows(db, sp, *g)) for g in sorted(seen)]
    keep = {class_key(*g) for g in seen}
    stale = [r["key"] for r in stats_rows(db, sp) if r["key"] not in keep]
    _write(db, sp, groups, stale)
    return len(groups)
