"""``sa.tl.annotate`` and ``sa.tl.annotate_file`` on small real references and queries."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scagent as sa
from scagent.tl import _annotate_file

KEYS = (
    "scagent_tissue",
    "scagent_tissue_confidence",
    "scagent_cell_type",
    "scagent_cell_type_ontology_id",
    "scagent_confidence",
    "scagent_agreement",
    "scagent_cell_type_consensus",
    "scagent_cluster",
    "scagent_call_reference",
    "scagent_prob_reference",
    "scagent_call_markers",
    "scagent_call_plugin",
)


@pytest.fixture(scope="module")
def query(atlas, reference):
    """Atlas cells of the reference's types that are not in the reference (raw counts)."""
    obs = atlas.obs
    types = set(reference.obs["cell_type"].astype(str))
    tissues = set(reference.obs["tissue"].astype(str))
    ok = obs["cell_type"].astype(str).isin(types) & obs["tissue"].astype(str).isin(tissues)
    ok &= ~obs.index.isin(reference.obs_names)
    ok &= obs["dataset"].isin(["pbmc3k", "baron2016_human"])
    rng = np.random.default_rng(0)
    pos = []
    for _, idx in obs[ok].groupby(["tissue", "cell_type"], observed=True).indices.items():
        pos.extend(np.flatnonzero(ok)[rng.permutation(idx)[:12]])
    q = atlas[np.sort(pos)].copy()
    return q


@pytest.fixture(scope="module")
def annotated(query, reference, tiny_registry, tmp_path_factory):
    sa.settings.data_dir = tmp_path_factory.mktemp("home")
    try:
        return sa.tl.annotate(query, reference=reference, plugins=tiny_registry, copy=True)
    finally:
        sa.settings.data_dir = None


def test_annotate_writes_every_documented_key(annotated, query):
    obs = annotated.obs
    for key in KEYS:
        assert key in obs, key
    assert obs["scagent_confidence"].between(0, 1).all()
    assert obs["scagent_agreement"].between(0, 1).all()
    rec = annotated.uns["scagent"]["annotate"]
    probs = annotated.obsm["scagent_probabilities"]
    assert probs.shape == (query.n_obs, len(rec["classes"]))
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-4)
    assert set(obs["scagent_cell_type_ontology_id"].astype(str)) <= set(rec["classes"])
    assert rec["tissue"]["how"] in ("dataset", "clusters", "across tissues")
    # the marker expert speaks per cell and per cluster
    assert set(rec["experts"]) == {"reference", "markers", "markers_cluster", "plugin"}
    some = next(iter(rec["clusters"].values()))
    assert {"cells", "call", "ontology_id", "experts", "markers", "mean_confidence"} <= set(some)
    assert annotated.obsm["X_scagent_tuned"].shape == (query.n_obs, 128)


def test_calls_are_right_on_cells_the_reference_never_saw(annotated, query):
    truth = query.obs["cell_type_ontology_term_id"].astype(str)
    got = annotated.obs["scagent_cell_type_ontology_id"].astype(str)
    assert (got == truth).mean() > 0.8
    # a B cell is a B cell, a beta cell a beta cell
    for t in ("CL:0000236", "CL:0000169"):
        assert (got[truth == t] == t).mean() > 0.8


def test_a_given_tissue_restricts_the_classes(query, reference, tiny_registry, tmp_path):
    sa.settings.data_dir = tmp_path
    try:
        panc = query[query.obs["tissue"] == "pancreas"].copy()
        before = panc.obs.copy()
        out = sa.tl.annotate(
            panc, tissue="pancreas", reference=reference, plugins=tiny_registry, copy=True
        )
        pd.testing.assert_frame_equal(panc.obs, before)  # copy=True leaves the input alone
        assert (out.obs["scagent_tissue"] == "pancreas").all()
        allowed = set(reference.obs.loc[reference.obs["tissue"] == "pancreas", "cell_type"])
        assert set(out.obs["scagent_cell_type"].astype(str)) <= allowed
        with pytest.raises(sa.InputDataError, match=r"Unknown tissue 'liver'.*blood"):
            sa.tl.annotate(panc, tissue="liver", reference=reference, copy=True)
    finally:
        sa.settings.data_dir = None


def test_experts_can_be_chosen_but_the_reference_is_needed(query, reference, tmp_path):
    sa.settings.data_dir = tmp_path
    try:
        out = sa.tl.annotate(
            query, reference=reference, experts=("reference", "markers"), copy=True
        )
        assert "scagent_call_plugin" not in out.obs and "X_scagent_tuned" not in out.obsm
        with pytest.raises(sa.InputDataError, match="reference expert is needed"):
            sa.tl.annotate(query, reference=reference, experts=("markers",), copy=True)
        with pytest.raises(sa.InputDataError, match="Unknown experts"):
            sa.tl.annotate(query, reference=reference, experts=("oracle",), copy=True)
    finally:
        sa.settings.data_dir = None


def test_majority_vote_stays_within_one_tissue(query, reference, tmp_path):
    sa.settings.data_dir = tmp_path
    try:
        adata = query.copy()
        adata.obs["cluster"] = "all"  # one group: votes must still not cross tissues
        sa.tl.annotate(
            adata,
            reference=reference,
            experts=("reference", "markers"),
            groupby="cluster",
            majority_voting=True,
            novelty=False,  # novelty may call some voted cells "unknown" afterwards
        )
        per = adata.obs.groupby("scagent_tissue", observed=True)["scagent_cell_type"].nunique()
        assert (per == 1).all()
        assert (
            adata.obs["scagent_tissue"].nunique()
            == adata.uns["scagent"]["annotate"]["vote"]["n_groups"]
        )
        assert "scagent_cell_type_per_cell" in adata.obs
        with pytest.raises(sa.InputDataError, match="groupby='nope'"):
            sa.tl.annotate(adata, reference=reference, groupby="nope", copy=True)
    finally:
        sa.settings.data_dir = None


def test_bad_input_is_refused_before_any_work(reference):
    scaled = reference.copy()
    sa.pp.prepare(scaled)
    X = scaled.layers["scagent_log1p_cp10k"].toarray()
    scaled = ad.AnnData((X - X.mean(0)) / (X.std(0) + 1e-6), obs=scaled.obs, var=scaled.var)
    with pytest.raises(sa.InputDataError, match="scaled"):
        sa.tl.annotate(scaled, reference=reference, copy=True)
    unknown_genes = ad.AnnData(
        reference.X.copy(), var=pd.DataFrame(index=[f"gene{i}" for i in range(reference.n_vars)])
    )
    with pytest.raises(sa.InputDataError, match="gene"):
        sa.tl.annotate(unknown_genes, reference=reference, copy=True)


def test_annotate_file_streams_in_chunks(query, reference, tiny_registry, tmp_path, monkeypatch):
    sa.settings.data_dir = tmp_path / "home"
    try:
        src = tmp_path / "in.h5ad"
        query.write_h5ad(src)
        out = tmp_path / "out.h5ad"
        table = sa.tl.annotate_file(
            src, out, reference=reference, plugins=tiny_registry, chunk_size=40
        )
        assert table["cells"].sum() == query.n_obs
        assert list(table.columns) == ["tissue", "cell_type", "cells", "mean_confidence"]
        got = ad.read_h5ad(out)
        assert list(got.obs_names) == list(query.obs_names)
        assert (got.X != query.X).nnz == 0  # the data travel unchanged
        rec = got.uns["scagent"]["annotate"]
        assert rec["streamed"]["chunk_size"] == 40 and len(rec["streamed"]["chunks"]) >= 2
        assert got.obsm["scagent_probabilities"].shape[0] == query.n_obs
        truth = query.obs["cell_type_ontology_term_id"].astype(str).to_numpy()
        got_ids = got.obs["scagent_cell_type_ontology_id"].astype(str).to_numpy()
        assert (got_ids == truth).mean() > 0.7
    finally:
        sa.settings.data_dir = None


def test_annotate_file_failure_leaves_no_output(query, reference, tmp_path, monkeypatch):
    sa.settings.data_dir = tmp_path / "home"
    try:
        src = tmp_path / "in.h5ad"
        query.write_h5ad(src)
        real = _annotate_file.annotate_prepared
        calls = []

        def flaky(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("killed")
            return real(*args, **kwargs)

        monkeypatch.setattr(_annotate_file, "annotate_prepared", flaky)
        with pytest.raises(RuntimeError, match="killed"):
            sa.tl.annotate_file(
                src,
                tmp_path / "out.h5ad",
                reference=reference,
                experts=("reference", "markers"),
                tissue="blood",
                chunk_size=40,
            )
        assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "in.h5ad"]
    finally:
        sa.settings.data_dir = None


def test_annotate_file_errors(reference, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sa.tl.annotate_file(tmp_path / "missing.h5ad", tmp_path / "o.h5ad")
    src = tmp_path / "in.h5ad"
    reference.write_h5ad(src)
    with pytest.raises(sa.InputDataError, match=r"must be an \.h5ad"):
        sa.tl.annotate_file(src, tmp_path / "o.csv")
    with pytest.raises(sa.InputDataError, match="overwrite the input"):
        sa.tl.annotate_file(src, src)
