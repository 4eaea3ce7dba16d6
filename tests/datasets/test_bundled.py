"""The data sets that ship inside the package, checked against the real source files."""

from __future__ import annotations

from importlib import resources

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scagent as sa
from scagent._constants import REFERENCE_OBS
from scagent.io import detect_gene_ids
from scagent.knowledge import cell_ontology, gene_table

MALIGNANT_CL = "CL:0001064"


# dataset in the atlas -> (source file, which of its cells belong in the human reference)
def _kang_sample(obs: pd.DataFrame) -> np.ndarray:
    """Kang et al.: at most 300 cells per (type, condition), drawn with seed 0 per group."""
    rng = np.random.default_rng(0)
    keep = np.zeros(len(obs), dtype=bool)
    for _, idx in sorted(obs.groupby(["cell_type", "condition"], observed=True).indices.items()):
        keep[rng.permutation(idx)[:300]] = True
    return keep


SOURCES = {
    "pbmc3k": ("pbmc3k_10x.h5ad", lambda obs: np.ones(len(obs), dtype=bool)),
    "kang2018": ("kang2018_pbmc_ifnb.h5ad", _kang_sample),
    "baron2016_human": (
        "baron2016_human_pancreas.h5ad",
        lambda obs: np.ones(len(obs), dtype=bool),
    ),
    "tirosh2016_oligodendroglioma": (
        "oligodendroglioma_tirosh2016.h5ad",
        lambda obs: ~obs["is_malignant"].astype(bool).to_numpy(),
    ),
    "wu2020": ("wu2020_tcells.h5ad", lambda obs: np.ones(len(obs), dtype=bool)),
}
EXPECTED_CELLS = {
    "pbmc3k": 2638,
    "kang2018": 5658,
    "baron2016_human": 2142,
    "tirosh2016_oligodendroglioma": 42,
    "wu2020": 200,
}


@pytest.fixture(scope="module")
def sources(shared_data) -> dict[str, ad.AnnData]:
    return {name: ad.read_h5ad(shared_data / "labelled" / f) for name, (f, _) in SOURCES.items()}


def _cell_sums(X) -> np.ndarray:
    return np.asarray(X.sum(axis=1), dtype=np.float64).ravel()


@pytest.mark.parametrize("dataset", list(SOURCES))
def test_atlas_has_every_labelled_reference_cell(atlas, sources, dataset):
    src = sources[dataset]
    keep = SOURCES[dataset][1](src.obs)
    assert keep.sum() == EXPECTED_CELLS[dataset]
    part = atlas[atlas.obs["dataset"] == dataset]
    assert part.n_obs == keep.sum()
    expected_ids = [f"{dataset}:{x}" for x in src.obs_names[keep]]
    assert sorted(part.obs_names) == sorted(expected_ids)
    # same labels, cell by cell
    part = part[expected_ids]
    np.testing.assert_array_equal(
        part.obs["cell_type_original"].astype(str).to_numpy(),
        src.obs["cell_type"][keep].astype(str).to_numpy(),
    )
    np.testing.assert_array_equal(
        part.obs["donor"].astype(str).to_numpy(), src.obs["donor"][keep].astype(str).to_numpy()
    )
    # the same counts: every cell's total is kept, and a gene's values match
    np.testing.assert_allclose(_cell_sums(part.X), _cell_sums(src.X[keep]), rtol=1e-5)
    gene = next(
        g for g in ("CD3E", "GCG", "PLP1", "MALAT1") if g in src.var_names and g in atlas.var_names
    )
    np.testing.assert_allclose(
        part[:, gene].X.toarray().ravel(), src[keep, gene].X.toarray().ravel(), rtol=1e-6
    )


def test_atlas_shape_and_columns(atlas):
    assert atlas.n_obs == sum(EXPECTED_CELLS.values()) == 10_680
    assert set(REFERENCE_OBS) <= set(atlas.obs.columns)
    assert atlas.obs_names.is_unique
    assert atlas.var_names.is_unique
    assert (atlas.obs["species"] == "human").all()
    # the Baron subset's mouse cells ship apart (mouse_pancreas), its study is listed too
    assert set(atlas.uns["scagent_dataset"]["studies"]) == set(SOURCES) | {"baron2016"}
    kang = atlas.obs[atlas.obs["dataset"] == "kang2018"]
    assert set(kang["condition"]) == {"control", "IFN-beta stimulated"}
    assert kang.groupby(["cell_type_original", "condition"], observed=True).size().max() == 300


def test_atlas_genes_are_current_human_symbols(atlas):
    assert detect_gene_ids(atlas.var_names)[:2] == ("symbol", "human")
    current = atlas.var_names.isin(list(gene_table().current_symbols))
    for dataset in SOURCES:
        measured = atlas.var[f"measured_in_{dataset}"].to_numpy()
        # Wu et al. keep ~6,500 NCBI LOC genes that have no Ensembl symbol; Baron et al.'s
        # 2016 annotation holds ~3% symbols retired since without a successor
        floor = {"wu2020": 0.75, "baron2016_human": 0.96}.get(dataset, 0.99)
        assert current[measured].mean() > floor, dataset
    assert (atlas.var.loc[current, "ensembl_id"] != "").all()


def test_atlas_holds_counts(atlas):
    assert atlas.X.data.min() >= 0
    umi = atlas[atlas.obs["dataset"] != "tirosh2016_oligodendroglioma"].X.data
    np.testing.assert_array_equal(umi, np.round(umi))
    assert sa.pp.detect_content(atlas.X) == "noninteger_counts"  # Smart-seq2 expected counts


def test_atlas_tissues(atlas):
    tissues = set(atlas.obs["tissue"].astype(str))
    assert len(tissues) >= 5
    assert {"blood", "pancreas", "brain", "lung"} <= tissues


def test_atlas_ontology_terms_are_current(atlas):
    onto = cell_ontology()
    for tid, label in (
        atlas.obs[["cell_type_ontology_term_id", "cell_type_ontology_label"]]
        .drop_duplicates()
        .itertuples(index=False)
    ):
        assert tid in onto, tid
        assert not onto.terms[tid].get("deprecated"), tid
        assert onto.label(tid) == label


def test_atlas_has_no_malignant_cells(atlas):
    assert MALIGNANT_CL not in set(atlas.obs["cell_type_ontology_term_id"])
    original = set(atlas.obs["cell_type_original"].astype(str))
    assert "malignant" not in original
    assert {"Oligodendrocytes (non-malignant)", "Microglia/Macrophage"} <= original
    assert not atlas.obs["annotation"].astype(str).str.startswith("malignant").any()


def test_novel_type_example(atlas, sources):
    novel = sa.datasets.novel_type_example()
    assert novel.n_obs == 142
    src = sources["tirosh2016_oligodendroglioma"]
    malignant = src.obs["is_malignant"].astype(bool).to_numpy()
    assert sorted(novel.obs_names) == sorted(
        f"tirosh2016_oligodendroglioma:{x}" for x in src.obs_names[malignant]
    )
    assert set(novel.obs["cell_type_ontology_term_id"]) == {MALIGNANT_CL}
    assert set(novel.obs["donor"].astype(str)) == {"93", "97", "MGH36", "MGH53"}
    assert (
        novel.obs["annotation"].astype(str) == "malignant_" + novel.obs["donor"].astype(str)
    ).all()
    assert set(REFERENCE_OBS) <= set(novel.obs.columns)
    assert not set(novel.obs_names) & set(atlas.obs_names)
    np.testing.assert_allclose(
        _cell_sums(
            novel[[f"tirosh2016_oligodendroglioma:{x}" for x in src.obs_names[malignant]]].X
        ),
        _cell_sums(src.X[malignant]),
        rtol=1e-5,
    )


def test_mouse_atlas(mouse_atlas, shared_data):
    assert mouse_atlas.n_obs == 175
    assert (mouse_atlas.obs["species"] == "mouse").all()
    src = ad.read_h5ad(shared_data / "labelled" / "baron_pancreas_subset.h5ad")
    assert mouse_atlas.n_obs == int((src.obs["species"] == "mouse").sum())
    assert detect_gene_ids(mouse_atlas.var_names)[:2] == ("symbol", "mouse")
    assert set(mouse_atlas.obs["tissue"].astype(str)) == {"pancreas"}
    onto = cell_ontology()
    assert all(t in onto for t in mouse_atlas.obs["cell_type_ontology_term_id"].unique())


def test_mouse_cells_are_not_in_human_atlas(atlas, mouse_atlas):
    assert not set(atlas.obs_names) & set(mouse_atlas.obs_names)


def test_unknown_species():
    with pytest.raises(ValueError, match=r"species must be 'human' or 'mouse', got 'rat'"):
        sa.datasets.reference_atlas(species="rat")


def test_packaged_files_are_small():
    total = 0
    for pkg in ("scagent.datasets", "scagent.knowledge"):
        folder = resources.files(pkg) / "data"
        files = [f for f in folder.iterdir() if f.is_file()]
        assert files
        total += sum(len(f.read_bytes()) for f in files)
    assert total <= 25 * 1024**2, f"{total / 1024**2:.1f} MiB of packaged data"


def test_loaders_return_independent_objects():
    a = sa.datasets.reference_atlas()
    b = sa.datasets.reference_atlas()
    a.obs["cell_type"] = pd.Categorical(["changed"] * a.n_obs)
    assert "changed" not in set(b.obs["cell_type"])
