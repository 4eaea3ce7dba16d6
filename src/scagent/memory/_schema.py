"""The Milvus collections of one space (cells and class statistics) and filter expressions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from ._config import IndexParams, Space
from ._errors import MemoryStoreError

__all__ = ["FIELDS", "LAYOUT_MARKER", "ensure_collections", "expression", "literal", "partition_of"]

#: An empty partition whose presence says the cells are kept in one partition per tissue
#: (stores written before that hold every cell in ``_default`` and are searched by filter).
LAYOUT_MARKER = "scagent_by_tissue"

#: Text fields of a cell row and their maximum length in bytes.
FIELDS = {
    "cell_id": 512,
    "tissue": 128,
    "cell_type": 256,
    "cell_type_ontology_term_id": 32,
    "dataset": 128,
    "plugin_version": 128,
    "encoder": 64,
}
#: Text fields of a class-statistics row.
STATS_FIELDS = {
    "key": 32,
    "tissue": 128,
    "plugin_version": 128,
    "encoder": 64,
    "term": 300,
    "cell_type": 256,
    "stats": 65535,
}


def literal(value: str) -> str:
    """A Milvus string literal (double-quoted, backslash escapes)."""
    return json.dumps(str(value), ensure_ascii=False)


def expression(**conditions: str | Iterable[str] | None) -> str:
    """``field == "v"`` / ``field in [...]`` joined by ``and``; ``None`` values are skipped."""
    parts = []
    for field, value in conditions.items():
        if value is None:
            continue
        if isinstance(value, str):
            parts.append(f"{field} == {literal(value)}")
        else:
            values = sorted({str(v) for v in value})
            parts.append(f"{field} in [{', '.join(literal(v) for v in values)}]")
    return " and ".join(parts)


def partition_of(tissue: str) -> str:
    """The Milvus partition of a tissue's cells (a stable name Milvus accepts).

    Cells are partitioned by tissue because every search of the memory is filtered by one
    tissue: searching that partition alone scans no other tissue's cells and needs no
    per-row filter mask, which in Milvus Lite costs more than the distance computations.
    """
    digest = hashlib.sha256(str(tissue).encode()).hexdigest()[:24]
    return f"t_{digest}"


def _cells_schema(client, dim: int):
    from pymilvus import DataType

    schema = client.create_schema(auto_id=True, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    for name, length in FIELDS.items():
        schema.add_field(name, DataType.VARCHAR, max_length=length)
    return schema


def _stats_schema(client, dim: int):
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.VARCHAR, max_length=STATS_FIELDS["key"], is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("n", DataType.INT64)
    for name, length in STATS_FIELDS.items():
        if name != "key":
            schema.add_field(name, DataType.VARCHAR, max_length=length)
    return schema


def collection_dim(client, name: str) -> int | None:
    """The vector width of collection ``name``, or ``None`` when it does not exist."""
    if not client.has_collection(name):
        return None
    for field in client.describe_collection(name)["fields"]:
        if field["name"] == "vector":
            return int(field["params"]["dim"])
    return None  # pragma: no cover - every scagent collection has a vector field


def _create(client, name: str, schema, field: str, index: IndexParams) -> None:
    """A collection with its vector index. The index is requested without waiting for it
    (``sync=False``): Milvus Lite has no timestamp service to wait with, and a server
    builds the index of an empty collection at once."""
    client.create_collection(name, schema=schema, consistency_level="Strong")
    params = client.prepare_index_params()
    extra = {"nlist": index.nlist} if index.index_type.startswith("IVF") else {}
    params.add_index(
        field_name=field, index_type=index.index_type, metric_type=index.metric, params=extra
    )
    client.create_index(name, params, sync=False)


def ensure_collections(client, space: Space, dim: int, index: IndexParams) -> None:
    """Create (if missing) and load the space's cell and statistics collections."""
    have = collection_dim(client, space.collection)
    if have is not None and have != dim:
        msg = (
            f"The memory's {space.name} space holds {have}-dimensional vectors; these have "
            f"{dim} (another encoder?). Rebuild it (scagent memory build --fresh) or point "
            "SCAGENT_MILVUS_URI at another store."
        )
        raise MemoryStoreError(msg)
    if have is None:
        _create(client, space.collection, _cells_schema(client, dim), "vector", index)
        client.create_partition(space.collection, LAYOUT_MARKER)
    if not client.has_collection(space.stats_collection):
        flat = IndexParams(index_type="FLAT", metric=index.metric)
        _create(client, space.stats_collection, _stats_schema(client, dim), "vector", flat)
    load(client, space)


def load(client, space: Space) -> bool:
    """Load the space's collections for search; ``False`` when they do not exist."""
    if not client.has_collection(space.collection):
        return False
    for name in (space.collection, space.stats_collection):
        if client.has_collection(name):
            client.load_collection(name)
    return True
