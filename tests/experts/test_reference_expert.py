"""The reference expert: a classifier on the query's own genes, cached per gene panel."""

import numpy as np
import pytest
import scipy.sparse as sp

import scagent as sa
from scagent.experts import ReferenceModel, fit_reference_model, reference_expert
from scagent.experts._reference import _training_matrix, shared_log1p


@pytest.fixture(scope="module")
def split(atlas):
    """Blood and pancreas cells of the atlas: a reference and held-out query cells."""
    obs = atlas.obs
    rng = np.random.default_rng(0)
    pick = []
    for (tissue, _t), idx in obs.groupby(["tissue", "cell_type"], observed=True).indices.items():
        if tissue in ("blood", "pancreas") and len(idx) >= 20:
            pick.extend(rng.permutation(idx)[:40])
    pick = rng.permutation(pick)
    ref, query = atlas[np.sort(pick[::2])].copy(), atlas[np.sort(pick[1::2])].copy()
    sa.pp.prepare(query)
    return ref, query


def test_right_on_held_out_cells_and_cached(split, tmp_path):
    ref, query = split
    sa.settings.data_dir = tmp_path
    try:
        X, genes = query.layers["scagent_log1p_cp10k"], query.var_names
        call = reference_expert(X, genes, reference=ref)
        assert call.name == "reference" and call.probs.shape == (query.n_obs, len(call.terms))
        np.testing.assert_allclose(call.probs.sum(1), 1, rtol=1e-5)
        term, _ = call.best()
        truth = query.obs["cell_type_ontology_term_id"].astype(str).to_numpy()
        assert (term == truth).mean() > 0.85
        assert not call.info["cache_hit"]
        again = reference_expert(X, genes, reference=ref)
        assert again.info["cache_hit"]
        np.testing.assert_allclose(again.probs, call.probs, rtol=1e-5)
        sim = call.cell_info["reference_similarity"]
        assert sim.shape == (query.n_obs,) and (sim > 0.3).all() and (sim <= 1 + 1e-5).all()
    finally:
        sa.settings.data_dir = None


def test_a_query_with_few_genes_gets_a_model_for_exactly_those_genes(split, tmp_path):
    ref, query = split
    sa.settings.data_dir = tmp_path
    try:
        keep = np.random.default_rng(1).permutation(query.n_vars)[:1500]
        small = query[:, np.sort(keep)].copy()
        X = small.layers["scagent_log1p_cp10k"]
        call = reference_expert(X, small.var_names, reference=ref)
        assert call.info["n_genes"] <= 1500 and call.info["n_query_genes"] == 1500
        tiny = query[:, :30].copy()
        with pytest.raises(sa.InputDataError, match="shares only"):
            reference_expert(tiny.layers["scagent_log1p_cp10k"], tiny.var_names, reference=ref)
        with pytest.raises(sa.InputDataError, match="no cells of tissue 'liver'"):
            reference_expert(X, small.var_names, reference=ref, tissue="liver")
    finally:
        sa.settings.data_dir = None


def test_renormalisation_over_the_shared_genes():
    X = sp.csr_matrix(np.log1p(np.array([[1.0, 3.0, 6.0], [0.0, 2.0, 2.0]])))
    F = shared_log1p(X, ["A", "B", "C"], ["B", "C", "D"]).toarray()
    np.testing.assert_allclose(np.expm1(F).sum(1), [1e4, 1e4], rtol=1e-5)
    np.testing.assert_allclose(np.expm1(F[0, :2]), [1e4 / 3, 2e4 / 3], rtol=1e-5)
    assert (F[:, 2] == 0).all()  # a panel gene the query lacks


def test_unmeasured_genes_are_filled_without_labels(atlas):
    ref = atlas[atlas.obs["dataset"].isin(["kang2018", "pbmc3k"]).to_numpy()][::20].copy()
    only_pbmc3k = ref.var_names[ref.var["measured_in_pbmc3k"] & ~ref.var["measured_in_kang2018"]]
    panel = np.asarray([*list(only_pbmc3k[:5]), "CD3E", "LYZ", "MS4A1"])
    F = _training_matrix(ref, panel).toarray()
    kang = (ref.obs["dataset"] == "kang2018").to_numpy()
    filled = F[kang][:, :5]
    assert np.allclose(filled, filled[0])  # one value per gene: the measuring study's mean
    np.testing.assert_allclose(filled[0], F[~kang][:, :5].mean(0), rtol=1e-5)


def test_model_saves_and_loads_without_pickles(split, tmp_path):
    ref, _ = split
    model = fit_reference_model(ref, ref.var_names[:400], max_cells_per_class=10)
    model.save(tmp_path / "m")
    back = ReferenceModel.load(tmp_path / "m")
    assert back.terms == model.terms and back.info == model.info
    np.testing.assert_array_equal(back.coef, model.coef)
    (tmp_path / "m.npz").write_bytes(b"damaged")
    assert ReferenceModel.load(tmp_path / "m") is None  # refitted, not crashed


def test_a_two_class_reference_gets_both_classes_right(atlas, tmp_path):
    # the brain of the atlas holds two types: sklearn keeps one coefficient row for them
    brain = atlas[atlas.obs["tissue"].astype(str) == "brain"].copy()
    assert brain.obs["cell_type"].nunique() == 2
    sa.settings.data_dir = tmp_path
    try:
        query = brain.copy()
        sa.pp.prepare(query)
        call = reference_expert(
            query.layers["scagent_log1p_cp10k"], query.var_names, reference=brain
        )
        term, _ = call.best()
        truth = query.obs["cell_type_ontology_term_id"].astype(str).to_numpy()
        assert len(call.terms) == 2 and (term == truth).mean() > 0.9
    finally:
        sa.settings.data_dir = None
