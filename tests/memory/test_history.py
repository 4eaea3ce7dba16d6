"""History (query log, tool traces) and the embedding cache, in SQLite."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import scagent as sa
from scagent.memory import EmbeddingCache, History, content_sha256, embed_cached


def test_query_log_and_traces(home):
    history = History()
    qid = history.log_query(
        "annotate pbmc.h5ad", intent={"task": "annotate", "tissue": None}, tools=["read"]
    )
    with history.trace("read", query_id=qid, inputs={"file": "pbmc.h5ad"}) as t:
        t.outputs = {"cells": 2638}
    with pytest.raises(ZeroDivisionError), history.trace("annotate", query_id=qid):
        1 / 0  # noqa: B018
    history.update_query(qid, outcome="2,638 cells annotated", status="ok", seconds=1.5)

    q = history.queries().iloc[0]
    assert q["request"] == "annotate pbmc.h5ad" and q["intent"] == {
        "task": "annotate",
        "tissue": None,
    }
    assert q["outcome"] == "2,638 cells annotated" and q["seconds"] == 1.5
    traces = history.traces(query_id=qid)
    assert list(traces["tool"]) == ["read", "annotate"]
    assert list(traces["status"]) == ["ok", "error"]
    assert traces["outputs"].iloc[0] == {"cells": 2638}
    assert "ZeroDivisionError" in traces["error"].iloc[1]
    assert (traces["seconds"] >= 0).all()
    with sqlite3.connect(home / "memory" / "history.sqlite") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(ValueError, match="Unknown query fields"):
        history.update_query(qid, colour="red")


WRITER = textwrap.dedent(
    """
    import sys
    from scagent.memory import History
    h = History()
    for i in range(100):
        qid = h.log_query(f"{sys.argv[1]} {i}")
        with h.trace("tool", query_id=qid):
            pass
    """
)


def test_two_processes_write_the_history_at_once(home):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, who]) for who in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    history = History()
    requests = set(history.queries(limit=1000)["request"])
    assert requests == {f"{w} {i}" for w in "ab" for i in range(100)}
    assert len(history.traces(limit=1000)) == 200


def test_second_request_on_a_file_skips_embedding(home, pbmc_small, tmp_path):
    path = tmp_path / "cells.h5ad"
    pbmc_small.write_h5ad(path)
    cache = EmbeddingCache()
    first = sa.read(path)
    assert embed_cached(first, source=path, cache=cache) is False
    assert (cache.hits, cache.misses) == (0, 1)
    second = sa.read(path)
    assert embed_cached(second, source=path, cache=cache) is True
    assert (cache.hits, cache.misses) == (1, 1)
    assert np.array_equal(first.obsm["X_scagent"], second.obsm["X_scagent"])
    assert second.uns["scagent"]["embed"]["cached"] is True
    assert second.uns["scagent"]["embed"]["model"] == first.uns["scagent"]["embed"]["model"]
    # another process (a new cache object) finds it too; other cells are a miss
    other = EmbeddingCache()
    sha = content_sha256(path)
    model = first.uns["scagent"]["embed"]["model_sha256"]
    assert other.get(sha, model, obs_names=first.obs_names) is not None
    assert other.get(sha, model, obs_names=first.obs_names[:-1]) is None
    assert other.get(sha, "another model") is None
    assert (other.hits, other.misses) == (1, 2)
    # a changed file is a new key
    pbmc_small[:-1].write_h5ad(path)
    assert content_sha256(path) != sha
