"""``sa.read``: every supported format, and a clear error for every kind of bad input."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
from anndata import AnnData

import scagent as sa
from scagent._constants import OBSM_OTHER_FEATURES, UNS_KEY, VAR_INPUT_ID, VAR_RECOGNISED


def _dense(X) -> np.ndarray:
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)


def _write_text(path: Path, lines: list[str], gz: bool) -> None:
    data = "".join(f"{line}\n" for line in lines).encode()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def _write_10x_dir(
    folder: Path,
    adata: AnnData,
    *,
    gz: bool,
    features: list[tuple[str, ...]],
    features_name: str = "features.tsv",
    extra: np.ndarray | None = None,
) -> Path:
    """Write a Cell Ranger matrix directory: ``extra`` holds the values of extra feature rows."""
    folder.mkdir()
    X = sp.csr_matrix(adata.X)
    if extra is not None:
        X = sp.hstack([X, sp.csr_matrix(extra)]).tocsr()
    mtx = folder / "matrix.mtx"
    scipy.io.mmwrite(str(mtx), sp.coo_matrix(X.T.astype(np.int64)))
    if gz:
        mtx.with_name("matrix.mtx.gz").write_bytes(gzip.compress(mtx.read_bytes()))
        mtx.unlink()
    _write_text(folder / features_name, ["\t".join(f) for f in features], gz)
    _write_text(folder / "barcodes.tsv", list(adata.obs_names), gz)
    return folder


def _assert_same_cells_and_genes(got: AnnData, ref: AnnData) -> None:
    assert list(got.obs_names) == list(ref.obs_names)
    assert list(got.var_names) == list(ref.var_names)
    np.testing.assert_array_equal(_dense(got.X), _dense(ref.X))


# --- formats ---------------------------------------------------------------------------------


def test_read_h5ad(pbmc_small, tmp_path):
    path = tmp_path / "pbmc.h5ad"
    pbmc_small.write_h5ad(path)
    adata = sa.read(path)
    _assert_same_cells_and_genes(adata, pbmc_small)
    assert adata.uns[UNS_KEY]["read"] == {"path": str(path), "format": "h5ad"}
    genes = adata.uns[UNS_KEY]["genes"]
    assert (genes["id_type"], genes["species"]) == ("symbol", "human")
    assert genes["n_genes"] == genes["n_recognised"] == pbmc_small.n_vars
    assert adata.var[VAR_RECOGNISED].all()
    assert list(adata.var[VAR_INPUT_ID]) == list(pbmc_small.var_names)
    assert list(adata.var["ensembl_id"]) == list(pbmc_small.var["ensembl_id"])


def test_read_accepts_str_path(pbmc_small, tmp_path):
    path = tmp_path / "pbmc.h5ad"
    pbmc_small.write_h5ad(path)
    assert sa.read(str(path)).shape == pbmc_small.shape


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_read_10x_mtx_dir(pbmc_small, tmp_path, gz):
    feats = [
        (e, g, "Gene Expression")
        for g, e in zip(pbmc_small.var_names, pbmc_small.var["ensembl_id"], strict=True)
    ]
    folder = _write_10x_dir(
        tmp_path / "filtered_feature_bc_matrix", pbmc_small, gz=gz, features=feats
    )
    adata = sa.read(folder)
    _assert_same_cells_and_genes(adata, pbmc_small)
    assert adata.uns[UNS_KEY]["read"]["format"] == "10x_mtx"
    genes = adata.uns[UNS_KEY]["genes"]
    assert (genes["id_type"], genes["species"]) == ("ensembl", "human")
    assert genes["n_recognised"] == pbmc_small.n_vars
    assert list(adata.var[VAR_INPUT_ID]) == list(pbmc_small.var["ensembl_id"])
    assert OBSM_OTHER_FEATURES not in adata.obsm


def test_read_10x_mtx_dir_genes_tsv_two_columns(pbmc_small, tmp_path):
    """Cell Ranger 2 layout: ``genes.tsv`` with Ensembl id and symbol, no feature type."""
    feats = [
        (e, g) for g, e in zip(pbmc_small.var_names, pbmc_small.var["ensembl_id"], strict=True)
    ]
    folder = _write_10x_dir(
        tmp_path / "hg19", pbmc_small, gz=False, features=feats, features_name="genes.tsv"
    )
    adata = sa.read(folder)
    _assert_same_cells_and_genes(adata, pbmc_small)
    assert adata.uns[UNS_KEY]["genes"]["n_recognised"] == pbmc_small.n_vars


def test_read_10x_mtx_dir_antibody_capture_goes_to_obsm(pbmc_small, tmp_path):
    """CITE-seq style features.tsv: antibody rows must not become genes."""
    # real counts of three marker genes stand in for the antibody-derived tags
    markers = ["CD3E", "FCGR3A", "LYZ"]
    assert set(markers) <= set(pbmc_small.var_names)
    adt = _dense(pbmc_small[:, markers].X)
    adt_names = ["CD3_TotalSeqB", "CD16_TotalSeqB", "CD14_TotalSeqB"]
    feats = [
        (e, g, "Gene Expression")
        for g, e in zip(pbmc_small.var_names, pbmc_small.var["ensembl_id"], strict=True)
    ]
    feats += [(n, n, "Antibody Capture") for n in adt_names]
    folder = _write_10x_dir(tmp_path / "cite", pbmc_small, gz=True, features=feats, extra=adt)
    adata = sa.read(folder)
    _assert_same_cells_and_genes(adata, pbmc_small)
    assert not set(adt_names) & set(adata.var_names)
    assert not set(adt_names) & set(adata.var[VAR_INPUT_ID])
    other = adata.obsm[OBSM_OTHER_FEATURES]
    assert isinstance(other, pd.DataFrame)
    assert list(other.columns) == [f"{n} (Antibody Capture)" for n in adt_names]
    assert list(other.index) == list(adata.obs_names)
    np.testing.assert_array_equal(other.to_numpy(), adt)


def test_read_10x_h5(shared_data):
    """The smallest real 10x HDF5 file (Liao et al. 2020, BALF C149, Cell Ranger 3 layout)."""
    path = (
        shared_data / "unlabelled" / "balf_liao2019_GSM4475052_C149_filtered_feature_bc_matrix.h5"
    )
    with h5py.File(path, "r") as f:
        n_genes, n_cells = (int(x) for x in f["matrix/shape"][:])
        total = float(f["matrix/data"][:].sum())
        first_barcode = f["matrix/barcodes"][0].decode()
        ids = [x.decode() for x in f["matrix/features/id"][:]]
    adata = sa.read(path)
    assert adata.shape == (n_cells, n_genes) == (2879, 33539)
    assert adata.obs_names[0] == first_barcode
    assert float(adata.X.sum()) == pytest.approx(total)
    assert adata.uns[UNS_KEY]["read"]["format"] == "10x_h5"
    genes = adata.uns[UNS_KEY]["genes"]
    assert (genes["id_type"], genes["species"]) == ("ensembl", "human")
    assert genes["n_recognised"] >= 0.95 * n_genes
    assert list(adata.var[VAR_INPUT_ID]) == ids
    assert {"CD3E", "CD14", "MS4A1", "SFTPC"} <= set(adata.var_names)
    assert adata.var_names.is_unique


def test_read_10x_h5_cellranger2_layout(pbmc_small, tmp_path):
    """Cell Ranger 2 HDF5: one group per genome with ``genes`` and ``gene_names``."""
    path = tmp_path / "filtered_gene_bc_matrices_h5.h5"
    M = sp.csc_matrix(pbmc_small.X.T.astype(np.int32))  # genes x cells, one column per cell
    with h5py.File(path, "w") as f:
        g = f.create_group("hg19")
        g["barcodes"] = np.asarray(pbmc_small.obs_names, dtype="S")
        g["genes"] = np.asarray(pbmc_small.var["ensembl_id"], dtype="S")
        g["gene_names"] = np.asarray(pbmc_small.var_names, dtype="S")
        g["data"], g["indices"], g["indptr"] = M.data, M.indices, M.indptr
        g["shape"] = np.asarray(M.shape, dtype=np.int32)
    adata = sa.read(path)
    _assert_same_cells_and_genes(adata, pbmc_small)
    assert adata.uns[UNS_KEY]["read"]["format"] == "10x_h5"
    assert adata.uns[UNS_KEY]["genes"]["id_type"] == "ensembl"


def test_read_loom(pbmc_small, tmp_path):
    path = tmp_path / "pbmc.loom"
    pbmc_small.write_loom(path)
    adata = sa.read(path)
    _assert_same_cells_and_genes(adata, pbmc_small)
    assert adata.uns[UNS_KEY]["read"]["format"] == "loom"
    assert adata.uns[UNS_KEY]["genes"]["n_recognised"] == pbmc_small.n_vars


def test_read_loom_loompy_convention(pbmc_small, tmp_path):
    """Looms from loompy/velocyto name cells ``CellID`` and genes ``Gene``."""
    loompy = pytest.importorskip("loompy")
    path = tmp_path / "velocyto.loom"
    loompy.create(
        str(path),
        sp.coo_matrix(pbmc_small.X.T),
        row_attrs={
            "Gene": np.asarray(pbmc_small.var_names),
            "Accession": np.asarray(pbmc_small.var["ensembl_id"]),
        },
        col_attrs={"CellID": np.asarray(pbmc_small.obs_names)},
    )
    adata = sa.read(path)
    _assert_same_cells_and_genes(adata, pbmc_small)
    assert adata.uns[UNS_KEY]["genes"]["n_recognised"] == pbmc_small.n_vars


_TEXT_FORMATS = {".csv": ",", ".tsv": "\t", ".tsv.gz": "\t", ".txt": "\t", ".csv.gz": ","}


@pytest.mark.parametrize("orientation", ["cells x genes", "genes x cells"])
@pytest.mark.parametrize("ext", list(_TEXT_FORMATS))
def test_read_text_detects_orientation(pbmc_small, tmp_path, ext, orientation):
    df = pd.DataFrame(
        _dense(pbmc_small.X).astype(np.int64),
        index=pbmc_small.obs_names,
        columns=pbmc_small.var_names,
    )
    if orientation == "genes x cells":
        df = df.T
    path = tmp_path / f"matrix{ext}"
    df.to_csv(path, sep=_TEXT_FORMATS[ext])
    adata = sa.read(path)
    _assert_same_cells_and_genes(adata, pbmc_small)
    kind = "csv" if ext.startswith(".csv") else "tsv"
    assert adata.uns[UNS_KEY]["read"]["format"] == f"{kind} ({orientation})"
    assert adata.uns[UNS_KEY]["genes"]["n_recognised"] == pbmc_small.n_vars


def test_read_make_unique_fixes_duplicated_cells(pbmc_small, tmp_path):
    df = pd.DataFrame(
        _dense(pbmc_small.X), index=pbmc_small.obs_names, columns=pbmc_small.var_names
    )
    df.index = [*df.index[:-1], df.index[0]]  # the last cell reuses the first cell's id
    path = tmp_path / "dup.csv"
    df.to_csv(path)
    adata = sa.read(path, make_unique=True)
    assert adata.n_obs == pbmc_small.n_obs
    assert adata.obs_names.is_unique
    assert adata.obs_names[0] == pbmc_small.obs_names[0]
    np.testing.assert_array_equal(_dense(adata.X), _dense(pbmc_small.X))


def test_read_h5ad_make_unique(pbmc_small, tmp_path):
    pbmc_small.obs_names = [*pbmc_small.obs_names[:-1], pbmc_small.obs_names[0]]
    path = tmp_path / "dup.h5ad"
    pbmc_small.write_h5ad(path)
    with pytest.raises(sa.InputDataError, match=r"dup\.h5ad has 1 duplicated cell ids"):
        sa.read(path)
    adata = sa.read(path, make_unique=True)
    assert adata.obs_names.is_unique
    assert adata.obs_names[-1] == f"{pbmc_small.obs_names[0]}-1"


# --- bad input -------------------------------------------------------------------------------


def test_read_missing_file(tmp_path):
    path = tmp_path / "nope.h5ad"
    with pytest.raises(FileNotFoundError, match=r"No such file or directory: .*nope\.h5ad"):
        sa.read(path)


def test_read_corrupt_h5ad(tmp_path):
    path = tmp_path / "broken.h5ad"
    path.write_bytes(b"this is not an HDF5 file\x00\xff\xfe" * 20)
    with pytest.raises(
        sa.InputDataError,
        match=r"Could not read .*broken\.h5ad \(format guessed from its name: \.h5ad\)",
    ):
        sa.read(path)


@pytest.mark.parametrize("ext", [".h5ad", ".h5", ".loom"])
def test_read_text_file_with_an_hdf5_name(pbmc_small, tmp_path, ext):
    """A table renamed to an HDF5 format gets one clear message, not an h5py traceback."""
    path = tmp_path / f"table{ext}"
    pd.DataFrame(
        _dense(pbmc_small.X), index=pbmc_small.obs_names, columns=pbmc_small.var_names
    ).to_csv(path)
    with pytest.raises(
        sa.InputDataError,
        match=rf"it is not an HDF5 file, as every \{ext} file is, but a text file \(it starts "
        r"',ACTB,ACTG1,.*'\)\. If it is a table of values, give it the extension of its format",
    ):
        sa.read(path)
    fixed = path.rename(path.with_suffix(".csv"))  # the fix the message gives works
    assert sa.read(fixed).shape == (50, 400)


def test_read_truncated_h5ad(pbmc_small, tmp_path):
    good = tmp_path / "good.h5ad"
    pbmc_small.write_h5ad(good)
    path = tmp_path / "truncated.h5ad"
    path.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(sa.InputDataError, match=r"Could not read .*truncated\.h5ad"):
        sa.read(path)


def test_read_corrupt_10x_h5(tmp_path):
    path = tmp_path / "broken.h5"
    path.write_bytes(b"\x89HDF garbage" * 50)
    with pytest.raises(
        sa.InputDataError,
        match=r"Could not read .*broken\.h5 \(format guessed from its name: \.h5\)",
    ):
        sa.read(path)


def test_read_h5_that_is_not_10x(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["values"] = np.arange(10)
    with pytest.raises(sa.InputDataError, match=r"is an HDF5 file but not a 10x matrix"):
        sa.read(path)


def test_read_corrupt_loom(tmp_path):
    path = tmp_path / "broken.loom"
    path.write_bytes(b"not a loom file" * 30)
    with pytest.raises(sa.InputDataError, match=r"Could not read .*broken\.loom"):
        sa.read(path)


def test_read_corrupt_gzipped_text(tmp_path):
    path = tmp_path / "broken.tsv.gz"
    path.write_bytes(b"definitely not gzip" * 30)
    with pytest.raises(
        sa.InputDataError,
        match=r"Could not read .*broken\.tsv\.gz \(format guessed from its name: \.tsv\): "
        r"Not a gzipped file",
    ):
        sa.read(path)


def test_read_text_with_non_numeric_columns(pbmc_small, tmp_path):
    df = pd.DataFrame(
        _dense(pbmc_small.X), index=pbmc_small.obs_names, columns=pbmc_small.var_names
    )
    df.insert(0, "cell_type", pbmc_small.obs["cell_type"].astype(str).to_numpy())
    path = tmp_path / "with_labels.csv"
    df.to_csv(path)
    with pytest.raises(
        sa.InputDataError,
        match=r"columns \['cell_type'\] are not numeric.*row names in the first column",
    ):
        sa.read(path)


def test_read_unknown_extension(tmp_path):
    path = tmp_path / "matrix.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(
        sa.InputDataError,
        match=r"Unknown file format '\.xlsx'.*scagent reads \.h5ad, \.h5 \(10x\), \.loom",
    ):
        sa.read(path)


def test_read_directory_that_is_not_10x(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(
        sa.InputDataError,
        match=r"is not a 10x matrix directory: it needs matrix\.mtx, barcodes\.tsv",
    ):
        sa.read(tmp_path)


def test_read_10x_dir_with_mismatched_files(pbmc_small, tmp_path):
    feats = [
        (e, g, "Gene Expression")
        for g, e in zip(pbmc_small.var_names, pbmc_small.var["ensembl_id"], strict=True)
    ]
    folder = _write_10x_dir(tmp_path / "mixed", pbmc_small, gz=False, features=feats)
    _write_text(folder / "barcodes.tsv", list(pbmc_small.obs_names[:10]), gz=False)
    with pytest.raises(
        sa.InputDataError, match=r"400 features and 10 barcodes; the files do not belong together"
    ):
        sa.read(folder)


def test_read_corrupt_mtx(pbmc_small, tmp_path):
    feats = [
        (e, g, "Gene Expression")
        for g, e in zip(pbmc_small.var_names, pbmc_small.var["ensembl_id"], strict=True)
    ]
    folder = _write_10x_dir(tmp_path / "bad_mtx", pbmc_small, gz=False, features=feats)
    (folder / "matrix.mtx").write_text("garbage\n1 2 3\n")
    with pytest.raises(sa.InputDataError, match=r"Could not read .*matrix\.mtx.*Matrix Market"):
        sa.read(folder)


def test_read_zero_cells(pbmc_small, tmp_path):
    path = tmp_path / "empty.h5ad"
    pbmc_small[:0].copy().write_h5ad(path)
    with pytest.raises(sa.InputDataError, match=r"empty\.h5ad is empty: 0 cells x 400 genes"):
        sa.read(path)


def test_read_text_without_values(pbmc_small, tmp_path):
    path = tmp_path / "header_only.csv"
    path.write_text("," + ",".join(pbmc_small.var_names) + "\n")
    with pytest.raises(
        sa.InputDataError, match=r"holds no matrix values \(found 0 rows x 400 columns\)"
    ):
        sa.read(path)


def test_read_all_zero(pbmc_small, tmp_path):
    pbmc_small.X = sp.csr_matrix(pbmc_small.shape, dtype=np.float32)
    path = tmp_path / "zeros.h5ad"
    pbmc_small.write_h5ad(path)
    with pytest.raises(sa.InputDataError, match=r"50 cells x 400 genes but every value is zero"):
        sa.read(path)


def test_read_nan(pbmc_small, tmp_path):
    df = pd.DataFrame(
        _dense(pbmc_small.X), index=pbmc_small.obs_names, columns=pbmc_small.var_names
    )
    df.iloc[3, 7] = np.nan  # written as an empty field
    path = tmp_path / "missing.csv"
    df.to_csv(path)
    with pytest.raises(
        sa.InputDataError,
        match=r"contains 1 NaN and 0 infinite values.*replace missing values with 0",
    ):
        sa.read(path)


def test_read_inf(pbmc_small, tmp_path):
    X = _dense(pbmc_small.X).astype(np.float32)
    X[0, 0] = np.inf
    X[1, 1] = -np.inf
    pbmc_small.X = X
    path = tmp_path / "inf.h5ad"
    pbmc_small.write_h5ad(path)
    with pytest.raises(
        sa.InputDataError, match=r"contains 0 NaN and 2 infinite values\. Expression must be finite"
    ):
        sa.read(path)


def test_read_duplicated_cell_ids(pbmc_small, tmp_path):
    df = pd.DataFrame(
        _dense(pbmc_small.X), index=pbmc_small.obs_names, columns=pbmc_small.var_names
    )
    df.index = [*df.index[:-1], df.index[0]]
    path = tmp_path / "dup.csv"
    df.to_csv(path)
    dup = re.escape(repr([pbmc_small.obs_names[0]]))
    with pytest.raises(
        sa.InputDataError, match=rf"1 duplicated cell ids \(e\.g\. {dup}\).*make_unique=True"
    ):
        sa.read(path)


def test_read_h5ad_without_x(pbmc_small, tmp_path):
    adata = AnnData(obs=pbmc_small.obs, var=pbmc_small.var, layers={"counts": pbmc_small.X})
    path = tmp_path / "layers_only.h5ad"
    adata.write_h5ad(path)
    with pytest.raises(
        sa.InputDataError,
        match=r"has no expression matrix \(\.X is None\); put the counts in \.X, e\.g\. "
        r"adata\.X = adata\.layers\['counts'\]",
    ):
        sa.read(path)
