"""``VectorMemory``: the cells of the two embedding spaces in one Milvus database."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from ._classes import datasets_of, recompute, refresh, stats_rows, update_after_insert
from ._client import close, open_client
from ._config import INDEX, SPACES, IndexParams, Space, memory_token, memory_uri
from ._neighbours import NEIGHBOUR_FIELDS, Neighbours
from ._schema import FIELDS, LAYOUT_MARKER, ensure_collections, expression, load, partition_of
from ._stats import ClassStats, stats_frame

__all__ = ["VectorMemory"]

logger = logging.getLogger("scagent")


def _unit(vectors, what: str) -> np.ndarray:
    V = np.asarray(vectors, dtype=np.float32)
    if V.ndim != 2 or V.shape[0] == 0:
        msg = f"{what} must be a non-empty (cells, dim) matrix, got shape {V.shape}."
        raise ValueError(msg)
    bad = ~np.isfinite(V).all(axis=1)
    if bad.any():
        msg = (
            f"{what}: {int(bad.sum())} of {len(V)} rows hold NaN or infinite values (cells "
            "of a tissue without a plugin have NaN tuned embeddings): leave them out."
        )
        raise ValueError(msg)
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    if (norms == 0).any():
        msg = f"{what}: {int((norms == 0).sum())} rows are all zeros and have no direction."
        raise ValueError(msg)
    return V / norms


def _per_cell(value, n: int, name: str) -> np.ndarray:
    if value is None or isinstance(value, str):
        return np.full(n, "" if value is None else value, dtype=object)
    arr = np.asarray(value, dtype=object)
    if arr.shape != (n,):
        msg = f"{name} must be one string or one per cell ({n}), got shape {arr.shape}."
        raise ValueError(msg)
    return np.array(["" if v is None else str(v) for v in arr], dtype=object)


class VectorMemory:
    """scagent's vector memory: a pretrained and a tuned embedding space in Milvus.

    Each space holds one row per stored cell (its unit vector, cell id, tissue, cell type,
    Cell Ontology id, dataset, plugin version and encoder) in an IVF_FLAT index with the
    cosine metric (:class:`~scagent.memory.IndexParams`), and keeps per-class centroids and
    distance statistics in step with the rows (:meth:`class_stats`).

    Parameters
    ----------
    uri
        A Milvus Lite ``.db`` path or a server URI (``http://host:19530``); default
        :func:`~scagent.memory.memory_uri`.
    token
        Server token (default ``$SCAGENT_MILVUS_TOKEN``).
    timeout
        Seconds to wait for a server to answer.
    index
        Index parameters used when a space is created, and the default ``nprobe``.

    Raises
    ------
    MemoryStoreBusy
        Another process holds the Milvus Lite store.
    MemoryStoreUnreachable
        The server did not answer.

    Examples
    --------
    >>> with VectorMemory() as memory:  # doctest: +SKIP
    ...     hits = memory.search("pretrained", adata.obsm["X_scagent"], k=10, tissue="blood")
    """

    def __init__(
        self,
        uri: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        index: IndexParams = INDEX,
    ) -> None:
        uri = memory_uri() if uri is None else str(uri)
        self.index = index
        self._conn = open_client(
            uri, token=memory_token() if token is None else token, timeout=timeout
        )
        self._loaded: set[str] = set()
        self._partitions: dict[str, set[str]] = {}

    # -- connection ------------------------------------------------------------------
    @property
    def uri(self) -> str:
        """The URI (an absolute path for Milvus Lite)."""
        return self._conn.uri

    @property
    def is_lite(self) -> bool:
        """Whether this is an embedded Milvus Lite store."""
        return self._conn.lite_path is not None

    @property
    def client(self):
        """The underlying ``pymilvus.MilvusClient``."""
        if self._conn is None:
            msg = "This VectorMemory is closed."
            raise RuntimeError(msg)
        return self._conn.client

    def close(self) -> None:
        """Close the connection (and free a Lite store for other processes)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            close(conn)

    def __enter__(self) -> VectorMemory:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    def _space(space: str) -> Space:
        if space not in SPACES:
            msg = f"Unknown space {space!r}; the memory has {sorted(SPACES)}."
            raise ValueError(msg)
        return SPACES[space]

    def _ready(self, sp: Space) -> bool:
        """Whether the space exists (loading it for search the first time)."""
        if sp.name in self._loaded:
            return True
        if load(self.client, sp):
            self._loaded.add(sp.name)
            return True
        return False

    def _partition_names(self, sp: Space, *, fresh: bool = False) -> set[str] | None:
        """The space's partitions, or ``None`` for a store without per-tissue partitions
        (``fresh``: ask Milvus again, for partitions another process created since)."""
        if fresh or sp.collection not in self._partitions:
            self._partitions[sp.collection] = set(self.client.list_partitions(sp.collection))
        names = self._partitions[sp.collection]
        return names if LAYOUT_MARKER in names else None

    def _partition_for(self, sp: Space, tissue: str) -> str | None:
        """The partition new cells of ``tissue`` go to (created on first use); ``None`` in
        a store without per-tissue partitions."""
        names = self._partition_names(sp)
        if names is None:
            return None
        name = partition_of(tissue)
        if name not in names:
            if not self.client.has_partition(sp.collection, name):
                self.client.create_partition(sp.collection, name)
            names.add(name)
        return name

    def count(self, space: str, **filters) -> int:
        """Rows of ``space`` matching ``filters`` (``tissue=``, ``dataset=``...)."""
        sp = self._space(space)
        if not self._ready(sp):
            return 0
        res = self.client.query(
            sp.collection, filter=expression(**filters), output_fields=["count(*)"]
        )
        return int(res[0]["count(*)"])

    # -- writing ---------------------------------------------------------------------
    def insert(
        self,
        space: str,
        vectors,
        *,
        cell_ids,
        tissue,
        cell_type,
        ontology_id,
        dataset,
        plugin_version="",
        encoder="",
        batch_size: int = 5000,
    ) -> int:
        """Store cells in ``space`` and update the statistics of the classes they join.

        Parameters
        ----------
        space
            ``"pretrained"`` or ``"tuned"``.
        vectors
            (cells, dim) embeddings; normalised to unit length here.
        cell_ids, tissue, cell_type, ontology_id, dataset, plugin_version, encoder
            One string per cell, or one string for all (``ontology_id`` may be ``""``).
        batch_size
            Rows per insert call.

        Returns
        -------
        The number of rows inserted.
        """
        sp = self._space(space)
        V = _unit(vectors, "vectors")
        n = len(V)
        meta = pd.DataFrame(
            {
                "cell_id": _per_cell(cell_ids, n, "cell_ids"),
                "tissue": _per_cell(tissue, n, "tissue"),
                "cell_type": _per_cell(cell_type, n, "cell_type"),
                "cell_type_ontology_term_id": _per_cell(ontology_id, n, "ontology_id"),
                "dataset": _per_cell(dataset, n, "dataset"),
                "plugin_version": _per_cell(plugin_version, n, "plugin_version"),
                "encoder": _per_cell(encoder, n, "encoder"),
            }
        )
        for field, limit in FIELDS.items():
            longest = meta[field].map(lambda s: len(s.encode())).max()
            if longest > limit:
                msg = f"{field} values may have at most {limit} bytes; one has {longest}."
                raise ValueError(msg)
        ensure_collections(self.client, sp, V.shape[1], self.index)
        self._loaded.add(sp.name)
        columns = {f: meta[f].tolist() for f in FIELDS}
        for tissue_name, where in meta.groupby("tissue", sort=False).indices.items():
            partition = self._partition_for(sp, tissue_name)
            for start in range(0, len(where), batch_size):
                rows = [
                    {"vector": V[i], **{f: columns[f][i] for f in FIELDS}}
                    for i in where[start : start + batch_size]
                ]
                if partition is None:
                    self.client.insert(sp.collection, rows)
                else:
                    self.client.insert(sp.collection, rows, partition_name=partition)
        update_after_insert(self, sp, meta, V)
        logger.info("Stored %d cells in the %s space.", n, sp.name)
        return n

    def delete(
        self,
        space: str | None = None,
        *,
        dataset: str | None = None,
        tissue: str | None = None,
        plugin_version: str | None = None,
        encoder: str | None = None,
    ) -> int:
        """Remove the rows matching every given filter (in one space or both).

        Returns
        -------
        The number of rows removed.
        """
        filters = {
            "dataset": dataset,
            "tissue": tissue,
            "plugin_version": plugin_version,
            "encoder": encoder,
        }
        if all(v is None for v in filters.values()):
            msg = "Give at least one of dataset, tissue, plugin_version, encoder (or use drop)."
            raise ValueError(msg)
        removed = 0
        for sp in [self._space(space)] if space else SPACES.values():
            if not self._ready(sp):
                continue
            n = self.count(sp.name, **filters)
            if n == 0:
                continue
            self.client.delete(sp.collection, filter=expression(**filters))
            removed += n
            expr = expression(tissue=tissue, plugin_version=plugin_version, encoder=encoder)
            touched = [
                r
                for r in stats_rows(self, sp, expr)
                if dataset is None or dataset in datasets_of(r)
            ]
            recompute(self, sp, touched)
            logger.info("Removed %d cells from the %s space.", n, sp.name)
        return removed

    def drop(self, space: str | None = None) -> None:
        """Delete a space (or both) entirely: cells and statistics."""
        for sp in [self._space(space)] if space else SPACES.values():
            for name in (sp.collection, sp.stats_collection):
                if self.client.has_collection(name):
                    self.client.drop_collection(name)
            self._loaded.discard(sp.name)
            self._partitions.pop(sp.collection, None)

    # -- class statistics ------------------------------------------------------------
    def refresh_stats(self, space: str | None = None) -> int:
        """Recompute every class's statistics from the stored rows (after a crash between
        writing rows and statistics; see :meth:`stats_in_step`).

        Returns
        -------
        The number of classes written.
        """
        return sum(
            refresh(self, sp)
            for sp in ([self._space(space)] if space else SPACES.values())
            if self._ready(sp)
        )

    def class_stats(
        self,
        space: str,
        *,
        tissue: str | None = None,
        plugin_version: str | None = None,
        encoder: str | None = None,
    ) -> ClassStats:
        """Per-class centroids and cell-to-centroid cosine-distance statistics.

        Parameters
        ----------
        space
            ``"pretrained"`` or ``"tuned"``.
        tissue, plugin_version, encoder
            Only classes of these.

        Returns
        -------
        A table with one row per class (``tissue``, ``plugin_version``, ``encoder``,
        ``term`` (Cell Ontology id or ``name:<label>``), ``cell_type``, ``n``, ``datasets``,
        ``mean``, ``std``, ``q50``, ``q90``, ``q95``, ``q99``, ``max``) and the centroids in
        the same order.
        """
        sp = self._space(space)
        if not self._ready(sp):
            return ClassStats(*stats_frame([]))
        expr = expression(tissue=tissue, plugin_version=plugin_version, encoder=encoder)
        return ClassStats(*stats_frame(stats_rows(self, sp, expr, vectors=True)))

    def stats_in_step(self, space: str) -> bool:
        """Whether the class statistics count exactly the stored rows."""
        sp = self._space(space)
        if not self._ready(sp):
            return True
        return self.count(space) == sum(int(r["n"]) for r in stats_rows(self, sp))

    # -- reading ---------------------------------------------------------------------
    def search(
        self,
        space: str,
        vectors,
        *,
        k: int = 10,
        tissue=None,
        plugin_version=None,
        dataset: str | list[str] | None = None,
        encoder: str | None = None,
        nprobe: int | None = None,
        batch_size: int = 1000,
    ) -> Neighbours:
        """The ``k`` nearest stored cells of each query vector.

        Parameters
        ----------
        space
            ``"pretrained"`` or ``"tuned"``.
        vectors
            (queries, dim) embeddings of the same encoder (normalised here).
        k
            Neighbours per query.
        tissue, plugin_version
            Filter: one value for all queries, or one per query (queries with ``None`` or
            ``""`` are not searched: e.g. cells whose tissue has no plugin).
        dataset
            Filter: one dataset or a list of them.
        encoder
            Filter: the encoder's sha256 (vectors of other encoders are not comparable).
        nprobe
            IVF cells scanned per query (default ``self.index.nprobe``).
        batch_size
            Queries per search call.

        Returns
        -------
        The neighbours, nearest first (NaN distances where fewer than ``k`` matched).
        """
        sp = self._space(space)
        V = _unit(vectors, "query vectors")
        n = len(V)
        out = Neighbours.empty(sp.name, n, k)
        if not self._ready(sp):
            return out
        tis = None if tissue is None or isinstance(tissue, str) else _per_cell(tissue, n, "tissue")
        pvs = (
            None
            if plugin_version is None or isinstance(plugin_version, str)
            else _per_cell(plugin_version, n, "plugin_version")
        )
        keys = pd.DataFrame(
            {
                "t": tis if tis is not None else np.full(n, tissue or "", dtype=object),
                "p": pvs if pvs is not None else np.full(n, plugin_version or "", dtype=object),
            }
        )
        params = {
            "metric_type": self.index.metric,
            "params": {"nprobe": nprobe or self.index.nprobe},
        }
        partitions = self._partition_names(sp)
        for (t, p), rows in keys.groupby(["t", "p"], sort=False).indices.items():
            if (tis is not None and t == "") or (pvs is not None and p == ""):
                continue  # a per-query filter left empty: nothing to search
            scope = {}
            by_partition = tissue is not None and partitions is not None
            if by_partition:
                if partition_of(t) not in partitions:
                    partitions = self._partition_names(sp, fresh=True)
                    if partition_of(t) not in partitions:
                        continue  # no stored cell of this tissue
                scope = {"partition_names": [partition_of(t)]}
            expr = expression(
                tissue=t if tissue is not None and not by_partition else None,
                plugin_version=p if plugin_version is not None else None,
                dataset=dataset,
                encoder=encoder,
            )
            for start in range(0, len(rows), batch_size):
                part = rows[start : start + batch_size]
                hits = self.client.search(
                    sp.collection,
                    data=V[part],
                    limit=k,
                    filter=expr,
                    output_fields=list(NEIGHBOUR_FIELDS),
                    search_params=params,
                    **scope,
                )
                for q, found in zip(part, hits):
                    for j, hit in enumerate(found):
                        out.distance[q, j] = max(0.0, 1.0 - hit["distance"])
                        entity = hit["entity"]
                        for f in NEIGHBOUR_FIELDS:
                            out.fields[f][q, j] = entity[f]
        return out

    def describe(self) -> dict:
        """Where the memory is, its index parameters and per space: rows, vector width,
        classes and whether the statistics are in step."""
        info = {
            "uri": self.uri,
            "kind": "Milvus Lite (embedded)" if self.is_lite else "Milvus server",
            "index": asdict(self.index),
            "size_bytes": _folder_size(Path(self.uri)) if self.is_lite else None,
            "spaces": {},
        }
        for sp in SPACES.values():
            if not self._ready(sp):
                info["spaces"][sp.name] = {"rows": 0, "dim": None, "classes": 0, "in_step": True}
                continue
            dim = next(
                int(f["params"]["dim"])
                for f in self.client.describe_collection(sp.collection)["fields"]
                if f["name"] == "vector"
            )
            stats = stats_rows(self, sp)
            rows = self.count(sp.name)
            info["spaces"][sp.name] = {
                "rows": rows,
                "dim": dim,
                "classes": len(stats),
                "in_step": rows == sum(int(r["n"]) for r in stats),
            }
        return info


def _folder_size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
