"""The shipped encoder and plugins on real files: every labelled file and pbmc68k_reduced."""

import anndata as ad
import numpy as np
import pytest
import scanpy as sc

import scagent as sa
from scagent.plugins import PluginRegistry, shipped_plugins_path

LABELLED = [
    "baron_pancreas_subset.h5ad",
    "oligodendroglioma_tirosh2016.h5ad",
    "pbmc3k_10x.h5ad",
    "wu2020_tcells.h5ad",
]
SHIPPED = PluginRegistry([shipped_plugins_path()])


def test_shipped_plugins_cover_every_atlas_tissue(atlas):
    assert SHIPPED.tissues() == sorted(atlas.obs["tissue"].astype(str).unique())
    tissue = SHIPPED.load("tissue")
    assert tissue.kind == "tissue_assignment" and set(tissue.labels) == set(SHIPPED.tissues())
    for name in SHIPPED.names():
        p = SHIPPED.load(name)
        assert p.base_sha256 == sa.models.load_encoder().sha256
        assert p.lora.n_experts == 5 and p.lora.rank == 8 and p.n_slots == 200


@pytest.mark.parametrize("name", LABELLED)
def test_annotate_every_labelled_file(shared_data, name, tmp_path):
    path = shared_data / "labelled" / name
    out = tmp_path / "out.h5ad"
    table = sa.tl.annotate_file(path, out, plugins=SHIPPED)
    got = ad.read_h5ad(out, backed="r")
    assert table["cells"].sum() == got.n_obs
    obs = got.obs
    assert obs["scagent_confidence"].between(0, 1).all()
    assert set(obs["scagent_tissue"].astype(str)) <= set(SHIPPED.tissues())
    got.file.close()
    # with a tissue given: that plugin for every cell
    small = sa.read(path)[:200].copy()
    tissue = {"baron": "pancreas", "oligo": "brain", "pbmc3k": "blood", "wu2020": "lung"}
    t = next(v for k, v in tissue.items() if name.startswith(k))
    sa.tl.annotate(small, tissue=t, plugins=SHIPPED)
    assert (small.obs["scagent_tissue"] == t).all()
    assert set(small.obs["scagent_cell_type"].astype(str)) <= set(SHIPPED.load(t).labels)


def test_pbmc68k_reduced_uses_raw_and_goes_to_blood():
    adata = sc.datasets.pbmc68k_reduced()  # X is scaled; .raw holds log-normalised values
    sa.tl.annotate(adata, plugins=SHIPPED)
    assert (adata.obs["scagent_tissue"] == "blood").mean() > 0.9
    assert adata.obsm["X_scagent_tuned"].shape == (700, 128)
    nk = adata.obs["bulk_labels"] == "CD56+ NK"
    assert (adata.obs.loc[nk, "scagent_cell_type"] == "natural killer cell").mean() > 0.6
    mono = adata.obs["bulk_labels"] == "CD14+ Monocyte"
    assert (
        adata.obs.loc[mono, "scagent_cell_type"].astype(str).str.contains("monocyte").mean() > 0.6
    )
    sa.tl.annotate(adata, tissue="blood", plugins=SHIPPED)
    assert (adata.obs["scagent_tissue"] == "blood").all()
    assert np.isfinite(adata.obsm["X_scagent_tuned"]).all()


def test_mouse_cells_are_read_through_human_orthologues(mouse_atlas):
    adata = mouse_atlas.copy()
    sa.tl.annotate(adata, tissue="pancreas", plugins=SHIPPED)
    assert adata.uns["scagent"]["annotate"]["n_genes_in_vocab"] > 10_000
    truth = adata.obs["cell_type"].astype(str)
    hits = (adata.obs["scagent_cell_type"].astype(str) == truth).mean()
    assert hits > 1 / 5  # better than chance among the five pancreas classes
