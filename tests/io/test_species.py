"""Files mixing human and mouse: refused with counts of genes and cells, or one species kept.

The barnyard here is made of real cells: PBMC3k (human) and Baron mouse pancreas cells from
the bundled atlas, side by side on the union of their genes, plus doublets (a human and a
mouse cell's counts added), as a human+mouse experiment mapped to a combined reference
gives.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData

import scagent as sa
from scagent._constants import UNS_KEY, VAR_INPUT_ID
from scagent.io._backed import BackedH5ad
from scagent.io._species import gene_species, strip_genome_prefix

N_HUMAN, N_MOUSE, N_DOUBLETS = 50, 60, 5


def _mouse_cells(mouse_atlas: AnnData, n_genes: int = 400) -> AnnData:
    sub = mouse_atlas[:N_MOUSE]
    top = np.argsort(-np.asarray(sub.X.sum(axis=0)).ravel(), kind="stable")[:n_genes]
    sub = sub[:, np.sort(top)]
    return AnnData(X=sp.csr_matrix(sub.X, dtype=np.float32), obs=sub.obs[[]], var=sub.var[[]])


@pytest.fixture
def barnyard(pbmc_small, mouse_atlas) -> AnnData:
    human = AnnData(X=pbmc_small.X, obs=pbmc_small.obs[[]], var=pbmc_small.var[[]])
    mouse = _mouse_cells(mouse_atlas)
    both = ad.concat([human, mouse], join="outer")
    doublets = both[:N_DOUBLETS].X + both[N_HUMAN : N_HUMAN + N_DOUBLETS].X
    doublets = AnnData(
        X=sp.csr_matrix(doublets),
        obs={"x": np.arange(N_DOUBLETS)},
        var=both.var,
    )
    doublets.obs_names = [f"doublet{i}" for i in range(N_DOUBLETS)]
    out = ad.concat([both, doublets[:, both.var_names]], join="outer")
    out.X = sp.csr_matrix(out.X, dtype=np.float32)
    out.obs = out.obs[[]]
    return out


def _cellranger_names(adata: AnnData) -> AnnData:
    """Features as Cell Ranger's GRCh38 + mm10 reference names them."""
    species = gene_species(adata.var_names)
    adata.var_names = [
        ("GRCh38_" if s == "human" else "mm10___") + g for g, s in zip(adata.var_names, species)
    ]
    return adata


def test_gene_species_and_genome_prefixes():
    ids = ["CD3E", "Cd3e", "ENSG00000198851.9", "ENSMUSG00000032093", "GRCh38_ACTB"]
    ids += ["mm10___Actb", "hg19_ENSG00000075624", "mm10_Gapdh", "not_a_gene", "ACTB_1"]
    assert list(gene_species(ids)) == [
        "human",
        "mouse",
        "human",
        "mouse",
        "human",
        "mouse",
        "human",
        "mouse",
        "",
        "",
    ]
    stripped, prefixed = strip_genome_prefix(["GRCh38_ACTB", "mm10___Actb", "CD3E", "hg19__"])
    assert stripped == ["ACTB", "Actb", "CD3E", "hg19__"]
    assert prefixed == ["human", "mouse", "", ""]


def test_single_species_files_are_not_mixed(pbmc_small, mouse_atlas):
    """A few look-alike symbols (the mouse atlas has some) make no mixture."""
    report = sa.io.standardize_genes(pbmc_small)
    assert report["mixed_species"] is False and report["n_mouse"] == 0
    mouse = mouse_atlas.copy()
    report = sa.io.standardize_genes(mouse)
    assert report["species"] == "mouse" and report["mixed_species"] is False
    assert 0 < report["n_human"] < 0.01 * report["n_mouse"]


def test_mixed_file_is_refused_with_counts_and_the_fix(barnyard, tmp_path):
    path = tmp_path / "barnyard.h5ad"
    barnyard.write_h5ad(path)
    with pytest.raises(sa.InputDataError) as info:
        sa.read(path)
    msg = str(info.value)
    assert msg.startswith("barnyard.h5ad mixes human and mouse genes (")
    assert f"{N_HUMAN} cells have at least 90% of their counts in human genes" in msg
    assert f"{N_MOUSE} in mouse genes, and {N_DOUBLETS} are mixed" in msg
    assert "sa.read(path, species='human')" in msg and "--species human" in msg


def test_mixed_object_in_memory_is_refused_by_prepare(barnyard):
    with pytest.raises(sa.InputDataError, match=r"mixes human and mouse genes"):
        sa.pp.prepare(barnyard)


@pytest.mark.parametrize(("species", "n_cells"), [("human", N_HUMAN), ("mouse", N_MOUSE)])
def test_read_keeps_one_species(barnyard, tmp_path, species, n_cells):
    path = tmp_path / "barnyard.h5ad"
    barnyard.write_h5ad(path)
    adata = sa.read(path, species=species)
    assert adata.n_obs == n_cells
    assert not any(name.startswith("doublet") for name in adata.obs_names)
    genes = adata.uns[UNS_KEY]["genes"]
    assert genes["species"] == species and genes["mixed_species"] is False
    other = "mouse" if species == "human" else "human"
    assert genes[f"n_{other}"] <= 1  # the few symbols both species share
    kept = adata.uns[UNS_KEY]["species"]
    assert kept["kept"] == species and kept["n_cells_mixed"] == N_DOUBLETS
    assert kept["n_cells_dropped"] == barnyard.n_obs - n_cells
    sa.pp.prepare(adata)  # the kept part is usable
    assert adata.uns[UNS_KEY]["prepare"]["content"] == "counts"


def test_cellranger_genome_prefixes(barnyard, tmp_path):
    path = tmp_path / "gex.h5ad"
    _cellranger_names(barnyard).write_h5ad(path)
    with pytest.raises(sa.InputDataError, match=r"mixes human and mouse genes"):
        sa.read(path)
    adata = sa.read(path, species="human")
    assert adata.n_obs == N_HUMAN
    assert adata.var[VAR_INPUT_ID].str.startswith("GRCh38_").all()
    assert not adata.var_names.str.startswith("GRCh38_").any()  # prefixes removed
    assert adata.uns[UNS_KEY]["genes"]["n_recognised"] == 400


def test_prefixed_single_species_file_is_recognised(pbmc_small, tmp_path):
    pbmc_small.var_names = [f"GRCh38_{g}" for g in pbmc_small.var_names]
    path = tmp_path / "human.h5ad"
    pbmc_small.write_h5ad(path)
    adata = sa.read(path)
    assert adata.uns[UNS_KEY]["genes"]["n_recognised"] == 400
    assert "CD74" in adata.var_names


def test_select_species_in_memory(barnyard):
    out = sa.io.select_species(barnyard, "mouse", copy=True)
    assert out.n_obs == N_MOUSE and barnyard.n_obs == N_HUMAN + N_MOUSE + N_DOUBLETS
    assert sa.io.select_species(barnyard, "human") is None
    assert barnyard.n_obs == N_HUMAN
    with pytest.raises(sa.InputDataError, match=r"species must be one of \('human', 'mouse'\)"):
        sa.io.select_species(barnyard, "rat")


def test_streamed_h5ad_is_refused_too(barnyard, tmp_path):
    path = tmp_path / "barnyard.h5ad"
    barnyard.write_h5ad(path)
    with pytest.raises(sa.InputDataError, match=r"barnyard\.h5ad mixes human and mouse genes"):
        BackedH5ad(path)
