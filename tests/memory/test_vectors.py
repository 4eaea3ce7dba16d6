"""The vector memory on Milvus Lite: inserts, filtered searches, class statistics."""

from __future__ import annotations

import numpy as np
import pytest

from scagent.memory import MemoryStoreError, VectorMemory, memory_uri

TYPES = np.array(["B cell", "T cell", "my odd cells"])
IDS = {"B cell": "CL:0000236", "T cell": "CL:0000084", "my odd cells": ""}


def _cells(n: int, seed: int, dataset: str, dim: int = 16):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    types = TYPES[rng.integers(0, 3, n)]
    return {
        "vectors": v / np.linalg.norm(v, axis=1, keepdims=True),
        "cell_ids": [f"{dataset}:{i}" for i in range(n)],
        "tissue": np.array(["blood", "lung"])[rng.integers(0, 2, n)],
        "cell_type": types,
        "ontology_id": [IDS[t] for t in types],
        "dataset": dataset,
        "encoder": "enc",
    }


def _insert(memory, space, cells, **extra):
    fields = {k: v for k, v in cells.items() if k != "vectors"}
    return memory.insert(space, cells["vectors"], **fields, **extra)


def _exact_stats(V, mask):
    c = V[mask].mean(axis=0)
    d = 1 - V[mask] @ (c / np.linalg.norm(c))
    return c, np.quantile(d, 0.95), d.max()


def test_default_uri_is_a_lite_store_in_the_data_dir(home, monkeypatch):
    assert memory_uri() == str(home / "memory" / "milvus.db")
    monkeypatch.setenv("SCAGENT_MILVUS_URI", "http://milvus.example:19530")
    assert memory_uri() == "http://milvus.example:19530"


def test_insert_search_and_filters(tmp_path):
    a = _cells(600, 0, "d1")
    b = _cells(200, 1, "d2")
    with VectorMemory(tmp_path / "m.db") as memory:
        assert memory.is_lite
        assert _insert(memory, "pretrained", a) == 600
        _insert(memory, "pretrained", b)
        assert memory.count("pretrained") == 800
        assert memory.count("pretrained", dataset="d2") == 200
        assert memory.count("pretrained", tissue="blood") == int(
            (a["tissue"] == "blood").sum() + (b["tissue"] == "blood").sum()
        )
        # each stored vector finds itself first (distance 0), nearest first
        q = a["vectors"][:50]
        nb = memory.search("pretrained", q, k=5, nprobe=128)
        assert (nb["cell_id"][:, 0] == np.array(a["cell_ids"][:50])).all()
        assert np.allclose(nb.distance[:, 0], 0, atol=1e-5)
        assert (np.diff(nb.distance, axis=1) >= -1e-6).all()
        # exact distances: cosine distance 1 - similarity
        sims = q @ np.vstack([a["vectors"], b["vectors"]]).T
        assert np.allclose(np.sort(1 - sims, axis=1)[:, :5], nb.distance, atol=1e-4)
        # one filter for all queries, and one tissue per query
        nb = memory.search("pretrained", q, k=5, dataset="d2")
        assert set(nb["dataset"].ravel()) == {"d2"}
        per_query = np.where(np.arange(50) % 2 == 0, "lung", "blood")
        per_query[:3] = ""  # not searched
        nb = memory.search("pretrained", q, k=5, tissue=per_query)
        assert np.isnan(nb.distance[:3]).all() and (nb["cell_id"][:3] == "").all()
        assert (nb["tissue"][3:] == per_query[3:, None]).all()
        # neighbours as a table and a summary for a person
        frame = nb.to_frame(np.array(a["cell_ids"][:50]))
        assert len(frame) == 47 * 5 and set(frame["rank"]) == {1, 2, 3, 4, 5}
        summary = nb.summary()
        assert summary["nearest_type"].iloc[0] == "" and summary["nearest_type"].iloc[3] != ""
        # an empty space answers with no neighbours
        assert np.isnan(memory.search("tuned", q, k=3).distance).all()


def _exact_in_tissue(q, cells, tissue, k):
    keep = cells["tissue"] == tissue
    sims = q @ cells["vectors"][keep].T
    return np.array(cells["cell_ids"])[keep][np.argsort(-sims, axis=1)[:, :k]]


def test_cells_are_partitioned_by_tissue(tmp_path):
    from scagent.memory._schema import LAYOUT_MARKER, partition_of

    a = _cells(400, 3, "d1")
    q = a["vectors"][:20]
    with VectorMemory(tmp_path / "m.db") as memory:
        _insert(memory, "pretrained", a)
        coll = "scagent_pretrained"
        parts = set(memory.client.list_partitions(coll))
        assert {LAYOUT_MARKER, partition_of("blood"), partition_of("lung")} <= parts
        assert memory.client.get_partition_stats(coll, "_default")["row_count"] == 0
        blood = int((a["tissue"] == "blood").sum())
        assert memory.client.get_partition_stats(coll, partition_of("blood"))["row_count"] == blood
        # a tissue-filtered search reads that partition only, and is exact at full nprobe
        nb = memory.search("pretrained", q, k=5, tissue="blood", nprobe=128)
        assert (nb["tissue"] == "blood").all()
        assert (nb["cell_id"] == _exact_in_tissue(q, a, "blood", 5)).all()
        # a tissue nobody stored: no neighbours, no error
        assert np.isnan(memory.search("pretrained", q, k=5, tissue="skin").distance).all()
        # a tissue added later (by this or another process) is found
        b = _cells(50, 4, "d2")
        b["tissue"] = np.full(50, "skin")
        _insert(memory, "pretrained", b)
        memory._partitions.clear()  # as a process that listed the partitions before
        memory._partitions[coll] = {LAYOUT_MARKER}
        nb = memory.search("pretrained", q, k=3, tissue="skin")
        assert (nb["dataset"] == "d2").all()


def test_a_store_without_tissue_partitions_is_searched_by_filter(tmp_path):
    """Stores written before cells were partitioned (all in ``_default``) still work."""
    from scagent.memory._config import SPACES
    from scagent.memory._schema import LAYOUT_MARKER, ensure_collections

    a = _cells(300, 5, "d1")
    q = a["vectors"][:10]
    with VectorMemory(tmp_path / "m.db") as memory:
        coll = "scagent_pretrained"
        ensure_collections(memory.client, SPACES["pretrained"], 16, memory.index)
        memory.client.release_collection(coll)
        memory.client.drop_partition(coll, LAYOUT_MARKER)
        assert LAYOUT_MARKER not in memory.client.list_partitions(coll)
        _insert(memory, "pretrained", a)  # the old layout: into _default
        assert memory.client.get_partition_stats(coll, "_default")["row_count"] == 300
        nb = memory.search("pretrained", q, k=5, tissue="lung", nprobe=128)
        assert (nb["tissue"] == "lung").all()
        assert (nb["cell_id"] == _exact_in_tissue(q, a, "lung", 5)).all()


def test_tuned_space_keeps_plugin_versions_apart(tmp_path):
    a = _cells(300, 2, "d1")
    with VectorMemory(tmp_path / "m.db") as memory:
        _insert(memory, "tuned", a, plugin_version="blood@v1")
        _insert(memory, "tuned", a, plugin_version="blood@v2")
        nb = memory.search("tuned", a["vectors"][:20], k=4, plugin_version="blood@v2")
        assert set(nb["plugin_version"].ravel()) == {"blood@v2"}
        stats = memory.class_stats("tuned").table
        assert set(stats["plugin_version"]) == {"blood@v1", "blood@v2"}
        assert memory.delete("tuned", plugin_version="blood@v1") == 300
        assert set(memory.class_stats("tuned").table["plugin_version"]) == {"blood@v2"}


def test_class_statistics_follow_inserts_and_deletes(tmp_path):
    a = _cells(500, 3, "d1")
    b = _cells(300, 4, "d2")
    with VectorMemory(tmp_path / "m.db") as memory:
        _insert(memory, "pretrained", a)
        _insert(memory, "pretrained", b)  # joins existing classes: recomputed from rows
        cs = memory.class_stats("pretrained")
        assert memory.stats_in_step("pretrained")
        assert cs.table["n"].sum() == 800 and len(cs.table) == 6  # 2 tissues x 3 types
        assert set(cs.table["term"]) == {"CL:0000236", "CL:0000084", "name:my odd cells"}
        V = np.vstack([a["vectors"], b["vectors"]])
        tissue = np.concatenate([a["tissue"], b["tissue"]])
        types = np.concatenate([a["cell_type"], b["cell_type"]])
        row = cs.table.index[(cs.table["tissue"] == "lung") & (cs.table["term"] == "CL:0000084")]
        i = int(row[0])
        centroid, q95, dmax = _exact_stats(V, (tissue == "lung") & (types == "T cell"))
        assert np.allclose(cs.centroids[i], centroid, atol=1e-5)
        assert cs.table.loc[i, "q95"] == pytest.approx(q95, abs=1e-5)
        assert cs.table.loc[i, "max"] == pytest.approx(dmax, abs=1e-5)
        assert set(cs.table.loc[i, "datasets"]) == {"d1", "d2"}

        assert memory.delete(dataset="d2") == 300
        cs = memory.class_stats("pretrained")
        assert memory.stats_in_step("pretrained")
        assert cs.table["n"].sum() == 500
        assert all(set(d) == {"d1"} for d in cs.table["datasets"])
        centroid, q95, _ = _exact_stats(
            a["vectors"], (a["tissue"] == "lung") & (a["cell_type"] == "T cell")
        )
        row = cs.table.index[(cs.table["tissue"] == "lung") & (cs.table["term"] == "CL:0000084")]
        assert np.allclose(cs.centroids[int(row[0])], centroid, atol=1e-5)

        # a crash between rows and statistics is detected, and repaired from the rows
        memory.client.delete("scagent_pretrained", filter='tissue == "blood"')
        assert not memory.stats_in_step("pretrained")
        assert memory.refresh_stats("pretrained") == 3
        assert memory.stats_in_step("pretrained")
        assert set(memory.class_stats("pretrained").table["tissue"]) == {"lung"}


def test_describe_reports_location_index_and_rows(tmp_path):
    with VectorMemory(tmp_path / "m.db") as memory:
        _insert(memory, "pretrained", _cells(100, 5, "d1"))
        info = memory.describe()
    assert info["uri"] == str((tmp_path / "m.db").resolve())
    assert info["index"] == {
        "index_type": "IVF_FLAT",
        "metric": "COSINE",
        "nlist": 128,
        "nprobe": 16,
    }
    assert info["size_bytes"] > 0
    assert info["spaces"]["pretrained"] == {"rows": 100, "dim": 16, "classes": 6, "in_step": True}
    assert info["spaces"]["tuned"]["rows"] == 0


def test_bad_input_is_a_clear_error(tmp_path, unit_vectors):
    cells = _cells(10, 6, "d1")
    with VectorMemory(tmp_path / "m.db") as memory:
        bad = cells["vectors"].copy()
        bad[3] = np.nan
        with pytest.raises(ValueError, match="NaN or infinite"):
            memory.insert("pretrained", bad, **{k: v for k, v in cells.items() if k != "vectors"})
        with pytest.raises(ValueError, match="Unknown space"):
            memory.search("other", cells["vectors"])
        with pytest.raises(ValueError, match="one per cell"):
            memory.insert(
                "pretrained",
                cells["vectors"],
                **{**{k: v for k, v in cells.items() if k != "vectors"}, "tissue": ["blood"]},
            )
        _insert(memory, "pretrained", cells)
        with pytest.raises(MemoryStoreError, match="16-dimensional"):
            memory.insert(
                "pretrained",
                unit_vectors(5, 32),
                cell_ids="x",
                tissue="t",
                cell_type="c",
                ontology_id="",
                dataset="d",
            )
        with pytest.raises(ValueError, match="at least one"):
            memory.delete()
