import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scagent as sa
from scagent.tl import _annotate_file


def test_annotate_routes_cells_by_tissue(tiny_registry, reference):
    adata = reference.copy()
    sa.tl.annotate(adata, plugins=tiny_registry)
    obs = adata.obs
    for col in (
        "scagent_tissue",
        "scagent_tissue_confidence",
        "scagent_cell_type",
        "scagent_cell_type_ontology_id",
        "scagent_confidence",
    ):
        assert col in obs
    assert (obs["scagent_tissue"].astype(str) == obs["tissue"].astype(str)).mean() >= 0.8
    blood_types = set(tiny_registry.load("blood").labels)
    pancreas_types = set(tiny_registry.load("pancreas").labels)
    for tissue, types in (("blood", blood_types), ("pancreas", pancreas_types)):
        routed = obs["scagent_tissue"] == tissue
        assert set(obs.loc[routed, "scagent_cell_type"].astype(str)) <= types
    assert obs["scagent_confidence"].between(0, 1).all()
    assert obs["scagent_tissue_confidence"].between(0, 1).all()
    emb = adata.obsm["X_scagent_tuned"]
    assert emb.shape == (adata.n_obs, 128)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    onto = obs.loc[obs["scagent_cell_type"] == "B cell", "scagent_cell_type_ontology_id"]
    assert (onto.astype(str) == "CL:0000236").all()
    params = adata.uns["scagent"]["annotate"]
    assert params["plugins"]["tissue"] == 1 and params["tissue"] == "assigned per cell"
    assert params["model"] == "default"


def test_annotate_with_a_given_tissue_and_copy(tiny_registry, reference):
    before = reference.obs.copy()
    out = sa.tl.annotate(reference, tissue="pancreas", plugins=tiny_registry, copy=True)
    pd.testing.assert_frame_equal(reference.obs, before)  # copy=True leaves the input alone
    assert (out.obs["scagent_tissue"] == "pancreas").all()
    assert (out.obs["scagent_tissue_confidence"] == 1).all()
    assert set(out.obs["scagent_cell_type"].astype(str)) <= set(
        tiny_registry.load("pancreas").labels
    )
    assert "tissue" not in out.uns["scagent"]["annotate"]["plugins"]
    panc = out[out.obs["tissue"] == "pancreas"]
    assert (
        panc.obs["scagent_cell_type"].astype(str) == panc.obs["cell_type"].astype(str)
    ).mean() > 0.5


def test_unknown_tissue_lists_the_available_ones(tiny_registry, reference):
    with pytest.raises(sa.InputDataError, match=r"Unknown tissue 'liver'.*\['blood', 'pancreas'\]"):
        sa.tl.annotate(reference, tissue="liver", plugins=tiny_registry, copy=True)


def test_majority_vote_by_column_and_over_clustering(tiny_registry, reference):
    adata = reference.copy()
    adata.obs["cluster"] = adata.obs["cell_type"].astype(str)
    sa.tl.annotate(adata, plugins=tiny_registry, groupby="cluster")
    assert "scagent_cell_type_per_cell" in adata.obs
    per_group = adata.obs.groupby("cluster", observed=True)["scagent_cell_type"].nunique()
    assert (per_group == 1).all()
    vote = adata.uns["scagent"]["annotate"]["vote"]
    assert vote["groupby"] == "cluster" and vote["n_groups"] == adata.obs["cluster"].nunique()
    sa.tl.annotate(adata, plugins=tiny_registry, majority_voting=True)
    assert adata.obs["scagent_vote_group"].nunique() >= 2
    with pytest.raises(sa.InputDataError, match="groupby='nope'"):
        sa.tl.annotate(adata, plugins=tiny_registry, groupby="nope", copy=True)


def test_bad_input_is_refused_before_any_work(tiny_registry, reference):
    scaled = reference.copy()
    sa.pp.prepare(scaled)
    X = scaled.layers["scagent_log1p_cp10k"].toarray()
    scaled = ad.AnnData((X - X.mean(0)) / (X.std(0) + 1e-6), obs=scaled.obs, var=scaled.var)
    with pytest.raises(sa.InputDataError, match="scaled"):
        sa.tl.annotate(scaled, plugins=tiny_registry, copy=True)
    unknown_genes = ad.AnnData(
        reference.X.copy(), var=pd.DataFrame(index=[f"gene{i}" for i in range(reference.n_vars)])
    )
    with pytest.raises(sa.InputDataError, match="gene"):
        sa.tl.annotate(unknown_genes, plugins=tiny_registry, copy=True)


def test_annotate_file_streams_in_chunks_and_matches_memory(tiny_registry, reference, tmp_path):
    src = tmp_path / "in.h5ad"
    reference.write_h5ad(src)
    out = tmp_path / "out.h5ad"
    table = sa.tl.annotate_file(src, out, plugins=tiny_registry, chunk_size=10)
    assert table["cells"].sum() == reference.n_obs
    assert list(table.columns) == ["tissue", "cell_type", "cells", "mean_confidence"]
    got = ad.read_h5ad(out)
    want = sa.tl.annotate(reference, plugins=tiny_registry, copy=True)
    assert list(got.obs_names) == list(reference.obs_names)
    pd.testing.assert_series_equal(
        got.obs["scagent_cell_type"].astype(str), want.obs["scagent_cell_type"].astype(str)
    )
    np.testing.assert_allclose(got.obsm["X_scagent_tuned"], want.obsm["X_scagent_tuned"], atol=1e-5)
    assert (got.X != reference.X).nnz == 0  # the data travel unchanged
    assert "cell_type" in got.obs and got.uns["scagent"]["annotate"]["streamed_chunk_size"] == 10


def test_annotate_file_failure_leaves_no_output(tiny_registry, reference, tmp_path, monkeypatch):
    src = tmp_path / "in.h5ad"
    reference.write_h5ad(src)
    real = _annotate_file.annotate_matrix
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(_annotate_file, "annotate_matrix", flaky)
    with pytest.raises(RuntimeError, match="killed"):
        sa.tl.annotate_file(src, tmp_path / "out.h5ad", plugins=tiny_registry, chunk_size=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.h5ad"]


def test_annotate_file_errors(tiny_registry, reference, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sa.tl.annotate_file(tmp_path / "missing.h5ad", tmp_path / "o.h5ad")
    src = tmp_path / "in.h5ad"
    reference.write_h5ad(src)
    with pytest.raises(sa.InputDataError, match=r"must be an \.h5ad"):
        sa.tl.annotate_file(src, tmp_path / "o.csv", plugins=tiny_registry)
    with pytest.raises(sa.InputDataError, match="overwrite the input"):
        sa.tl.annotate_file(src, src, plugins=tiny_registry)
