"""A vector memory held by another process does not stop novelty detection: it goes on
without the nearest-neighbour evidence and says why."""

import anndata as ad
import numpy as np

import scagent as sa
from scagent.memory import MemoryStoreBusy
from scagent.tl import _detect_novel


def test_a_busy_memory_store_leaves_novelty_without_neighbours(atlas, monkeypatch, tmp_path):
    monkeypatch.setattr(sa.settings, "data_dir", tmp_path / "home")
    rng = np.random.default_rng(0)
    blood = np.flatnonzero(atlas.obs["tissue"].astype(str).to_numpy() == "blood")
    rows = np.sort(rng.permutation(blood)[:300])
    ref, query = atlas[rows[:240]].copy(), atlas[rows[240:]].copy()
    query = ad.AnnData(query.X, obs=query.obs[[]], var=query.var[[]])

    def busy(*args, **kwargs):
        raise MemoryStoreBusy("The memory store x is in use by another scagent process.")

    monkeypatch.setattr(_detect_novel, "novelty_source", busy)
    sa.tl.annotate(query, reference=ref, build_memory=True, progress=False)
    info = query.uns["scagent"]["novelty"]
    assert len(info["spaces"]) == 0
    assert "in use by another scagent process" in info["note"]
    assert "scagent_is_novel" in query.obs
