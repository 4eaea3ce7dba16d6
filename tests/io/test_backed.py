"""Streamed ``.h5ad`` input is checked as ``sa.read`` checks it, without loading ``X``."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import scagent as sa
from scagent._constants import UNS_KEY
from scagent.io._backed import BackedH5ad


def test_chunks_carry_the_recognised_genes(pbmc_small, tmp_path):
    ensembl = pbmc_small.var["ensembl_id"].to_numpy()
    pbmc_small.var["symbol"] = pbmc_small.var_names.to_numpy()
    pbmc_small.var_names = [f"feature{i}" for i in range(pbmc_small.n_vars)]
    path = tmp_path / "x.h5ad"
    pbmc_small.write_h5ad(path)
    with BackedH5ad(path, gene_column="symbol") as source:
        assert source.n_obs == 50
        assert source.genes["source_column"] == "symbol"
        assert source.genes["n_recognised"] == 400
        chunk = source.chunk(10, 30)
        assert chunk.n_obs == 20
        assert list(chunk.var["ensembl_id"]) == list(ensembl)
        assert chunk.uns[UNS_KEY]["genes"] == source.genes
        sa.pp.prepare(chunk)  # uses the report: no second gene detection
        assert chunk.uns[UNS_KEY]["prepare"]["content"] == "counts"
    with pytest.raises(sa.InputDataError, match=r"gene_column='nope' is not a column of \.var"):
        BackedH5ad(path, gene_column="nope")


def test_text_file_named_h5ad(tmp_path):
    path = tmp_path / "table.h5ad"
    path.write_text("gene,cell1,cell2\nCD3E,1,0\nMS4A1,0,4\n")
    with pytest.raises(
        sa.InputDataError,
        match=r"not an HDF5 file, as every \.h5ad file is, but a text file \(it starts "
        r"'gene,cell1,cell2'\)\. If it is a table of values, give it the extension of its "
        r"format \(\.csv",
    ):
        BackedH5ad(path)


def test_empty_file_named_h5ad(tmp_path):
    path = tmp_path / "download.h5ad"
    path.touch()
    with pytest.raises(sa.InputDataError, match=r"an empty file \(0 bytes\).*download it again"):
        BackedH5ad(path)


def test_truncated_h5ad(pbmc_small, tmp_path):
    good = tmp_path / "good.h5ad"
    pbmc_small.write_h5ad(good)
    path = tmp_path / "cut.h5ad"
    path.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(
        sa.InputDataError, match=r"Could not read .*cut\.h5ad.*truncated or damaged"
    ):
        BackedH5ad(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No such file or directory"):
        BackedH5ad(tmp_path / "nope.h5ad")


def test_duplicated_cells_and_empty_files(pbmc_small, tmp_path):
    dup = pbmc_small.copy()
    dup.obs_names = [*dup.obs_names[:-1], dup.obs_names[0]]
    dup.write_h5ad(tmp_path / "dup.h5ad")
    with pytest.raises(sa.InputDataError, match=r"1 duplicated cell ids.*make_unique=True"):
        BackedH5ad(tmp_path / "dup.h5ad")
    pbmc_small[:0].copy().write_h5ad(tmp_path / "empty.h5ad")
    with pytest.raises(sa.InputDataError, match=r"empty\.h5ad is empty: 0 cells x 400 genes"):
        BackedH5ad(tmp_path / "empty.h5ad")


def test_nan_in_a_later_chunk_names_the_cells(pbmc_small, tmp_path, monkeypatch):
    monkeypatch.setattr("scagent.io._backed._SAMPLE", 10)  # the opening check sees 10 cells
    X = pbmc_small.X.toarray()
    X[42, 7] = np.nan
    pbmc_small.X = sp.csr_matrix(X)
    path = tmp_path / "nan.h5ad"
    pbmc_small.write_h5ad(path)
    with BackedH5ad(path) as source:
        source.chunk(0, 40)
        with pytest.raises(
            sa.InputDataError, match=r"nan\.h5ad \(cells 40 to 50\) contains 1 NaN and 0 infinite"
        ):
            source.chunk(40, 50)
