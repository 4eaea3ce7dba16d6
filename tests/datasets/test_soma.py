"""``sa.datasets.from_soma`` on a local SOMA experiment laid out like CELLxGENE Census."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData

import scagent as sa
from scagent._constants import REFERENCE_OBS

tiledbsoma = pytest.importorskip("tiledbsoma")
soma_io = pytest.importorskip("tiledbsoma.io")

N_GENES = 500
#: Cells written with is_primary_data == False (Census marks duplicated cells this way).
NON_PRIMARY = "wu2020"


@pytest.fixture(scope="module")
def census_like(atlas) -> AnnData:
    """The atlas (all cells, its 500 most expressed genes) with Census's column names."""
    totals = np.asarray(atlas.X.sum(axis=0)).ravel()
    has_id = atlas.var["ensembl_id"].to_numpy() != ""
    order = np.argsort(-np.where(has_id, totals, -1), kind="stable")[:N_GENES]
    adata = atlas[:, np.sort(order)].copy()
    adata.obs = adata.obs.rename(
        columns={"donor": "donor_id", "technology": "assay", "dataset": "dataset_id"}
    )
    adata.obs["is_primary_data"] = (adata.obs["dataset_id"] != NON_PRIMARY).to_numpy()
    adata.var = adata.var[["ensembl_id"]].rename(columns={"ensembl_id": "feature_id"})
    adata.var["feature_name"] = adata.var_names.astype(str)
    adata.var_names = adata.var["feature_id"].to_numpy()
    adata.uns = {}
    return adata


@pytest.fixture(scope="module")
def soma_uri(census_like, tmp_path_factory) -> str:
    uri = str(tmp_path_factory.mktemp("soma") / "census_like")
    soma_io.from_anndata(uri, census_like, "RNA", X_layer_name="raw")
    return uri


def _group_sizes(obs, keys=("cell_type", "tissue")) -> dict:
    sizes = obs.groupby(list(keys), observed=True).size()
    return {k: int(v) for k, v in sizes.items() if v > 0}


def test_stratified_cap(soma_uri, atlas):
    ref = sa.datasets.from_soma(soma_uri, max_cells_per_type=10, seed=0)
    primary = atlas.obs[atlas.obs["dataset"] != NON_PRIMARY]
    expected = {k: min(v, 10) for k, v in _group_sizes(primary).items()}
    assert _group_sizes(ref.obs) == expected
    assert ref.n_obs == sum(expected.values())
    assert ref.obs_names.is_unique


def test_default_query_keeps_primary_data_only(soma_uri, atlas):
    ref = sa.datasets.from_soma(soma_uri, max_cells_per_type=None)
    assert ref.n_obs == int((atlas.obs["dataset"] != NON_PRIMARY).sum())
    assert NON_PRIMARY not in set(ref.obs["dataset"].astype(str))
    everything = sa.datasets.from_soma(soma_uri, obs_query=None, max_cells_per_type=None)
    assert everything.n_obs == atlas.n_obs


def test_harmonised_obs(soma_uri, atlas):
    ref = sa.datasets.from_soma(soma_uri, max_cells_per_type=25, seed=3)
    assert set(REFERENCE_OBS) <= set(ref.obs.columns)
    same = atlas.obs.loc[ref.obs_names]
    for col in REFERENCE_OBS:
        np.testing.assert_array_equal(
            ref.obs[col].astype(str).to_numpy(), same[col].astype(str).to_numpy(), err_msg=col
        )


def test_symbols_and_counts(soma_uri, census_like, atlas):
    ref = sa.datasets.from_soma(soma_uri, max_cells_per_type=25, seed=3)
    assert list(ref.var_names) == list(census_like.var["feature_name"])
    assert list(ref.var["ensembl_id"]) == list(census_like.var_names)
    assert sa.io.detect_gene_ids(ref.var_names)[:2] == ("symbol", "human")
    expected = atlas[ref.obs_names, ref.var_names].X
    got = sp.csr_matrix(ref.X)
    assert got.shape == expected.shape
    assert (got != expected).nnz == 0


def test_sampling_is_deterministic(soma_uri):
    a = sa.datasets.from_soma(soma_uri, max_cells_per_type=5, seed=11)
    b = sa.datasets.from_soma(soma_uri, max_cells_per_type=5, seed=11)
    c = sa.datasets.from_soma(soma_uri, max_cells_per_type=5, seed=12)
    assert list(a.obs_names) == list(b.obs_names)
    assert list(a.obs_names) != list(c.obs_names)
    assert _group_sizes(a.obs) == _group_sizes(c.obs)


def test_default_seed_is_settings_seed(soma_uri, monkeypatch):
    monkeypatch.setattr(sa.settings, "seed", 7)
    a = sa.datasets.from_soma(soma_uri, max_cells_per_type=5)
    b = sa.datasets.from_soma(soma_uri, max_cells_per_type=5, seed=7)
    assert list(a.obs_names) == list(b.obs_names)


def test_obs_query_one_tissue(soma_uri, atlas):
    ref = sa.datasets.from_soma(soma_uri, obs_query="tissue == 'lung'", max_cells_per_type=None)
    assert set(ref.obs["tissue"].astype(str)) == {"lung"}
    assert ref.n_obs == int((atlas.obs["tissue"] == "lung").sum()) == 105


def test_open_experiment_accepted(soma_uri):
    with tiledbsoma.Experiment.open(soma_uri) as exp:
        ref = sa.datasets.from_soma(exp, obs_query="tissue == 'kidney'", max_cells_per_type=None)
        assert not exp.closed  # the caller's experiment stays open
    assert ref.n_obs == 24


def test_missing_uri(tmp_path):
    uri = str(tmp_path / "no_such_experiment")
    with pytest.raises(
        sa.InputDataError, match=r"Could not open a SOMA experiment at '.*no_such_experiment'"
    ):
        sa.datasets.from_soma(uri)


def test_bad_x_layer(soma_uri):
    with pytest.raises(sa.InputDataError, match=r"No X layer 'counts'; available: \['raw'\]"):
        sa.datasets.from_soma(soma_uri, X_name="counts")


def test_bad_measurement(soma_uri):
    with pytest.raises(
        sa.InputDataError, match=r"No measurement 'ATAC'; the experiment has \['RNA'\]"
    ):
        sa.datasets.from_soma(soma_uri, measurement="ATAC")


def test_filter_matching_nothing(soma_uri):
    with pytest.raises(
        sa.InputDataError, match=r"No cells in .* match obs_query=\"tissue == 'liver'\""
    ):
        sa.datasets.from_soma(soma_uri, obs_query="tissue == 'liver'")


def test_invalid_filter(soma_uri):
    with pytest.raises(
        sa.InputDataError, match=r"obs_query 'no_such_column == 1' is not a valid SOMA value filter"
    ):
        sa.datasets.from_soma(soma_uri, obs_query="no_such_column == 1")


@pytest.fixture(scope="module")
def tiny_experiments(census_like, tmp_path_factory) -> dict[str, str]:
    """Two small experiments: one without ``is_primary_data``, one without ``cell_type``."""
    cells = census_like.obs_names[::30]
    base = census_like[cells, :300].copy()
    uris = {}
    no_primary = base.copy()
    no_primary.obs = no_primary.obs.drop(columns="is_primary_data")
    no_type = base.copy()
    no_type.obs = no_type.obs.rename(columns={"cell_type": "celltype"})
    for name, adata in {"no_primary": no_primary, "no_type": no_type}.items():
        uris[name] = str(tmp_path_factory.mktemp("soma") / name)
        soma_io.from_anndata(uris[name], adata, "RNA", X_layer_name="raw")
    return uris


def test_default_query_dropped_without_primary_column(tiny_experiments, census_like):
    ref = sa.datasets.from_soma(tiny_experiments["no_primary"], max_cells_per_type=None)
    assert ref.n_obs == len(census_like.obs_names[::30])  # no cell dropped, no error


def test_missing_cell_type_column(tiny_experiments):
    with pytest.raises(
        sa.InputDataError, match=r"obs has no 'cell_type' column \(it has \[.*'celltype'"
    ):
        sa.datasets.from_soma(tiny_experiments["no_type"])
