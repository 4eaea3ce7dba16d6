import shutil

import numpy as np
import pytest
import torch

import scagent as sa
from scagent.models import TokenBatch, load_encoder, model_input
from scagent.nn import active_adapter, adapter_names
from scagent.plugins import PluginError, PluginRegistry, host_for

LABELLED = [
    "pbmc3k_10x.h5ad",
    "baron_pancreas_subset.h5ad",
    "oligodendroglioma_tirosh2016.h5ad",
    "wu2020_tcells.h5ad",
]


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    monkeypatch.setattr(sa.settings, "progress", False)


def test_embed_default_writes_documented_keys(atlas):
    adata = atlas[::20].copy()
    layers_before = set(adata.layers)
    sa.tl.embed(adata)
    emb = adata.obsm["X_scagent"]
    enc = sa.models.load_encoder()
    assert emb.shape == (adata.n_obs, enc.dim)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, rtol=1e-5)
    info = adata.uns["scagent"]["embed"]
    assert info["model"] == "default" and info["kind"] == "scagent"
    assert len(info["model_sha256"]) == 64
    assert 0 < info["mean_tokens_per_cell"] <= enc.max_len
    assert set(adata.layers) == layers_before  # counts were prepared on a copy


def test_embed_is_deterministic_and_copy_leaves_input(atlas):
    a = atlas[:64].copy()
    out = sa.tl.embed(a, copy=True)
    assert "X_scagent" not in a.obsm
    again = sa.tl.embed(a, copy=True)
    np.testing.assert_array_equal(out.obsm["X_scagent"], again.obsm["X_scagent"])


def test_embed_same_cell_same_result_in_any_batch(atlas):
    a = atlas[:40].copy()
    sa.tl.embed(a, batch_size=7)
    b = atlas[:40].copy()
    sa.tl.embed(b, batch_size=40)
    np.testing.assert_allclose(a.obsm["X_scagent"], b.obsm["X_scagent"], atol=1e-4)


def test_embed_separates_cell_types(atlas):
    """Cells are nearer to their own type than to others in the pretrained space."""
    adata = atlas[atlas.obs["dataset"] == "pbmc3k"].copy()
    sa.tl.embed(adata)
    Z = adata.obsm["X_scagent"]
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(Z), 400, replace=False)
    sims = Z[idx] @ Z.T
    np.fill_diagonal(sims[:, idx], -np.inf)
    nn = sims.argmax(1)
    agreement = (labels[nn] == labels[idx]).mean()
    # majority-type baseline of PBMC3k is 0.26 (naive CD4 T)
    assert agreement > 0.6


def test_too_few_vocabulary_genes(atlas):
    adata = atlas[:10, :300].copy()
    adata.var_names = [f"NOTAGENE{i}" for i in range(300)]
    adata.uns["scagent"] = {
        "genes": {
            "n_recognised": 300,
            "n_genes": 300,
            "species": "human",
            "id_type": "symbol",
            "source_column": "var_names",
        }
    }
    with pytest.raises(sa.InputDataError, match="in the vocabulary"):
        sa.tl.embed(adata)


@pytest.mark.parametrize("name", LABELLED)
def test_embed_every_labelled_file(shared_data, name):
    adata = sa.read(shared_data / "labelled" / name)
    sa.pp.prepare(adata)
    sa.tl.embed(adata)
    assert np.isfinite(adata.obsm["X_scagent"]).all()
    assert adata.uns["scagent"]["embed"]["n_genes_in_vocab"] > 5000


def test_embed_runs_on_the_bare_encoder_after_an_interrupted_annotation(
    tiny_registry, reference, tmp_path
):
    cells = reference.copy()
    fresh = sa.tl.embed(cells, copy=True).obsm["X_scagent"]
    # the cell-type plugins are damaged on disk: annotation stops after the tissue plugin ran
    damaged = tmp_path / "plugins"
    shutil.copytree(tiny_registry.roots[0], damaged)
    for name in ("blood", "pancreas"):
        with open(next((damaged / name).glob("v*/weights.safetensors")), "r+b") as fh:
            fh.truncate(100)
    with pytest.raises(PluginError, match="damaged"):
        sa.tl.annotate(cells, plugins=PluginRegistry([damaged]))
    enc = load_encoder()
    assert "tissue" in " ".join(adapter_names(enc.model))  # the tissue plugin did run
    assert active_adapter(enc.model) is None
    after = sa.tl.embed(cells, copy=True).obsm["X_scagent"]
    np.testing.assert_array_equal(after, fresh)


def test_plugin_prediction_failing_midway_leaves_no_adapter_active(tiny_registry, reference):
    enc = load_encoder()
    host = host_for(enc)
    key = host.attach(tiny_registry.load("blood"))
    X, ids, _ = model_input(reference, enc)
    fresh, _ = enc.embed(X, ids)
    tokens, _ = host.tokens(X, ids)
    bad = TokenBatch(torch.full_like(tokens.genes, 10**7), tokens.values, tokens.padding)
    with pytest.raises(IndexError):
        host.predict(key, bad)  # fails inside the adapted forward pass
    assert active_adapter(enc.model) is None
    np.testing.assert_array_equal(enc.embed(X, ids)[0], fresh)
    # even with an adapter left switched on by a caller, embed uses the base model
    host.use(key)
    try:
        np.testing.assert_array_equal(enc.embed(X, ids)[0], fresh)
        assert active_adapter(enc.model) == key  # and leaves the caller's choice alone
        tuned = host.predict(key, tokens).embedding
        assert not np.allclose(tuned, fresh, atol=1e-3)
    finally:
        host.use(None)
