"""The memory benchmark's quick run: real embeddings, real Milvus Lite, exact references."""

from __future__ import annotations

import numpy as np
import pytest

from scagent.bench._memory import exact_topk, memory_suite, recall, resample


def test_exact_search_and_recall_helpers(unit_vectors):
    V = unit_vectors(500, 8, seed=1)
    top = exact_topk(V[:20], V, k=5)
    assert (top[:, 0] == np.arange(20)).all()
    sims = V[:20] @ V.T
    assert np.allclose(np.take_along_axis(sims, top, 1), -np.sort(-sims, axis=1)[:, :5])
    assert recall(top, top) == 1.0
    assert recall(np.full_like(top, -1), top) == 0.0
    W, src = resample(V, 800, 0.01, np.random.default_rng(0))
    assert (src[:500] == np.arange(500)).all() and np.allclose(W[:500], V, atol=1e-6)
    assert np.allclose(np.linalg.norm(W, axis=1), 1, atol=1e-5)
    assert (np.sum(W[500:] * V[src[500:]], axis=1) > 0.9).all()  # near their source


@pytest.mark.slow  # minutes: real inserts and searches at several sizes
def test_quick_memory_suite(home):
    section = memory_suite(quick=True)
    tables = dict(section.extra_tables)
    sizes = tables["Insert (batched, class statistics included) and index build"]
    assert [r["stored cells"] for r in sizes] == [2000, 5000]
    assert all(r["insert rows/s"] > 0 for r in sizes)
    latency = tables["Filtered top-10 search: Milvus vs exact search"]
    assert {r["queries"] for r in latency} == {1, 50, 200}
    assert all(r["FAISS recall@10"] > 0.99 for r in latency)  # exact is exact
    assert min(r["recall@10"] for r in latency) > 0.8
    sweep = tables["Recall and speed against nprobe"]
    assert [r["nprobe"] for r in sweep] == [4, 8, 16, 32, 64]
    assert sweep[-1]["recall@10"] >= sweep[0]["recall@10"]
    other = tables["Memory build and the embedding cache"]
    assert other[0]["cells"] == 200 and other[0]["peak MB"] > 0
    assert "1 hit, 1 miss" in other[1]["note"]
    assert any("recall@10 at the default nprobe" in n for n in section.notes)
