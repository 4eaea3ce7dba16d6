"""Gene identifiers: symbols, Ensembl ids, aliases, mouse genes and ``gene_column``."""

from __future__ import annotations

import gzip
from importlib import resources

import pandas as pd
import pytest

import scagent as sa
from scagent._constants import UNS_KEY, VAR_ENSEMBL, VAR_INPUT_ID, VAR_RECOGNISED
from scagent.io import detect_gene_ids, standardize_genes
from scagent.knowledge import gene_table

# A real alias row of the bundled gene table (PBMC3k's hg19 annotation): H2AFZ is now H2AZ1.
ALIAS, CURRENT, ALIAS_ENSEMBL = "H2AFZ", "H2AZ1", "ENSG00000164032"


@pytest.fixture(scope="module")
def gene_rows() -> pd.DataFrame:
    path = resources.files("scagent.knowledge") / "data" / "genes_human.tsv.gz"
    with resources.as_file(path) as p, gzip.open(p, "rt") as fh:
        return pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False)


def _report(adata) -> dict:
    return adata.uns[UNS_KEY]["genes"]


def test_detect_symbols(pbmc_small):
    assert detect_gene_ids(pbmc_small.var_names) == ("symbol", "human", 1.0)


def test_detect_nothing():
    assert detect_gene_ids([]) == ("symbol", "human", 0.0)


@pytest.mark.parametrize("version", ["", ".12"], ids=["unversioned", "versioned"])
def test_ensembl_ids_mapped_to_symbols(pbmc_small, tmp_path, version):
    symbols = list(pbmc_small.var_names)
    ids = list(pbmc_small.var["ensembl_id"])
    assert all(gene_table().ensembl_to_symbol[e] == s for e, s in zip(ids, symbols, strict=True))
    pbmc_small.var_names = [f"{e}{version}" for e in ids]
    pbmc_small.var = pbmc_small.var.drop(columns="ensembl_id")
    assert detect_gene_ids(pbmc_small.var_names)[:2] == ("ensembl", "human")
    path = tmp_path / "ensembl.h5ad"
    pbmc_small.write_h5ad(path)
    adata = sa.read(path)
    assert list(adata.var_names) == symbols
    assert list(adata.var[VAR_ENSEMBL]) == ids  # version suffix stripped
    assert list(adata.var[VAR_INPUT_ID]) == [f"{e}{version}" for e in ids]
    report = _report(adata)
    assert report["id_type"] == "ensembl"
    assert report["species"] == "human"
    assert report["n_genes"] == report["n_recognised"] == len(ids)


def test_number_recognised_is_reported(pbmc_small):
    names = list(pbmc_small.var_names)
    unknown = [f"not_a_gene_{i}" for i in range(25)]
    pbmc_small.var_names = unknown + names[25:]
    report = standardize_genes(pbmc_small)
    assert report == _report(pbmc_small)
    assert report["n_genes"] == 400
    assert report["n_recognised"] == 375
    assert report["source_column"] == "var_names"
    assert not pbmc_small.var[VAR_RECOGNISED].iloc[:25].any()
    assert pbmc_small.var[VAR_RECOGNISED].iloc[25:].all()
    assert list(pbmc_small.var_names[:25]) == unknown  # unknown ids are kept as they are
    assert (pbmc_small.var[VAR_ENSEMBL].iloc[:25] == "").all()


def test_unknown_ensembl_id_falls_back_to_10x_symbol(pbmc_small):
    """10x readers keep symbols in ``var['gene_symbols']``; they name unknown Ensembl ids."""
    ids = list(pbmc_small.var["ensembl_id"])
    symbols = list(pbmc_small.var_names)
    ids[0] = "ENSG99999999999"
    pbmc_small.var_names = ids
    pbmc_small.var["gene_symbols"] = symbols
    pbmc_small.var = pbmc_small.var.drop(columns="ensembl_id")
    report = standardize_genes(pbmc_small)
    assert report["source_column"] == "var_names"
    assert report["n_recognised"] == 399
    assert list(pbmc_small.var_names) == symbols
    assert not pbmc_small.var[VAR_RECOGNISED].iloc[0]


def test_alias_is_a_real_row_of_the_gene_table(gene_rows):
    alias = gene_rows[(gene_rows["symbol"] == ALIAS) & (gene_rows["kind"] == "alias")]
    primary = gene_rows[
        (gene_rows["ensembl_id"] == ALIAS_ENSEMBL) & (gene_rows["kind"] == "primary")
    ]
    assert list(alias["ensembl_id"]) == [ALIAS_ENSEMBL]
    assert list(primary["symbol"]) == [CURRENT]


def test_alias_mapped_to_current_symbol(pbmc_small):
    assert CURRENT in pbmc_small.var_names
    pbmc_small.var_names = [ALIAS if g == CURRENT else g for g in pbmc_small.var_names]
    standardize_genes(pbmc_small)
    assert CURRENT in pbmc_small.var_names
    assert ALIAS not in pbmc_small.var_names
    row = pbmc_small.var.loc[CURRENT]
    assert row[VAR_INPUT_ID] == ALIAS
    assert row[VAR_RECOGNISED]
    assert row[VAR_ENSEMBL] == ALIAS_ENSEMBL
    assert _report(pbmc_small)["n_recognised"] == 400


def test_real_hg19_file_gets_current_symbols(shared_data):
    """PBMC3k's hg19 symbols (e.g. H2AFZ) come out as current symbols."""
    adata = sa.read(shared_data / "labelled" / "pbmc3k_10x.h5ad")
    assert adata.shape == (2638, 32738)
    assert CURRENT in adata.var_names
    assert ALIAS not in adata.var_names
    assert adata.var_names.is_unique
    report = _report(adata)
    assert report["species"] == "human"
    assert report["n_recognised"] >= 0.9 * report["n_genes"]


def test_mouse_symbols_recognised_as_mouse(mouse_atlas, tmp_path):
    assert detect_gene_ids(mouse_atlas.var_names)[:2] == ("symbol", "mouse")
    path = tmp_path / "mouse.h5ad"
    mouse_atlas.write_h5ad(path)
    adata = sa.read(path)
    report = _report(adata)
    assert (report["id_type"], report["species"]) == ("symbol", "mouse")
    assert report["n_recognised"] >= 0.8 * mouse_atlas.n_vars
    assert list(adata.var_names) == list(mouse_atlas.var_names)  # not turned into human symbols
    assert {"Gcg", "Ins1", "Sst"} <= set(adata.var_names[adata.var[VAR_RECOGNISED]])


def test_mouse_ensembl_ids_refused(mouse_atlas):
    adata = mouse_atlas[:20].copy()
    adata.var_names = [f"ENSMUSG{i:011d}" for i in range(adata.n_vars)]
    with pytest.raises(
        sa.InputDataError, match=r"mouse Ensembl ids \(ENSMUSG\.\.\.\).*Pass gene_column="
    ):
        standardize_genes(adata)


def test_gene_column(pbmc_small, tmp_path):
    symbols = list(pbmc_small.var_names)
    pbmc_small.var["symbol"] = symbols
    pbmc_small.var_names = [f"feature_{i}" for i in range(pbmc_small.n_vars)]
    path = tmp_path / "features.h5ad"
    pbmc_small.write_h5ad(path)
    adata = sa.read(path, gene_column="symbol")
    assert list(adata.var_names) == symbols
    assert _report(adata)["source_column"] == "symbol"
    assert _report(adata)["n_recognised"] == 400


def test_gene_column_detected(pbmc_small):
    pbmc_small.var = pbmc_small.var.drop(columns="ensembl_id")
    pbmc_small.var["symbol"] = pd.Categorical(pbmc_small.var_names)
    symbols = list(pbmc_small.var_names)
    pbmc_small.var_names = [f"feature_{i}" for i in range(pbmc_small.n_vars)]
    report = standardize_genes(pbmc_small)
    assert report["source_column"] == "symbol"
    assert list(pbmc_small.var_names) == symbols


def test_wrong_gene_column(pbmc_small, tmp_path):
    path = tmp_path / "pbmc.h5ad"
    pbmc_small.write_h5ad(path)
    with pytest.raises(
        sa.InputDataError,
        match=r"gene_column='symbol' is not a column of \.var; available columns: \['ensembl_id'\]",
    ):
        sa.read(path, gene_column="symbol")


def test_var_names_that_are_not_genes(pbmc_small, tmp_path):
    pbmc_small.var_names = [
        f"peak_chr1_{1000 * i}_{1000 * i + 500}" for i in range(pbmc_small.n_vars)
    ]
    pbmc_small.var = pbmc_small.var.drop(columns="ensembl_id")
    path = tmp_path / "peaks.h5ad"
    pbmc_small.write_h5ad(path)
    with pytest.raises(
        sa.InputDataError,
        match=r"Only 0 of 400 genes in 'var_names' are recognised .* at least 200 are needed\. "
        r"Check that the genes are the columns .* or pass gene_column=",
    ):
        sa.read(path)


def test_too_few_recognised_genes(pbmc_small):
    few = pbmc_small[:, :150].copy()
    with pytest.raises(
        sa.InputDataError,
        match=r"Only 150 of 150 genes .* at least 200 are needed"
        r".*sa\.settings\.min_recognised_genes",
    ):
        standardize_genes(few)


def test_min_recognised_genes_setting(pbmc_small, monkeypatch):
    monkeypatch.setattr(sa.settings, "min_recognised_genes", 100)
    few = pbmc_small[:, :150].copy()
    assert standardize_genes(few)["n_recognised"] == 150


def test_check_false_does_not_raise(pbmc_small):
    few = pbmc_small[:, :10].copy()
    assert standardize_genes(few, check=False)["n_recognised"] == 10


def test_duplicated_symbols_made_unique(pbmc_small):
    """Two ids mapping to one symbol must not give duplicated var_names."""
    names = list(pbmc_small.var_names)
    other = next(i for i, g in enumerate(names) if g != CURRENT)
    names[other] = ALIAS  # CURRENT is also present
    pbmc_small.var_names = names
    standardize_genes(pbmc_small)
    assert pbmc_small.var_names.is_unique
    assert {CURRENT, f"{CURRENT}-1"} <= set(pbmc_small.var_names)
    assert (pbmc_small.var.loc[[CURRENT, f"{CURRENT}-1"], VAR_ENSEMBL] == ALIAS_ENSEMBL).all()
