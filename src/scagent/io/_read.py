"""``sa.read``: one entry point for every common single-cell file format."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import anndata as ad
import h5py
from anndata import AnnData

from .._constants import UNS_KEY
from .._errors import InputDataError
from ._genes import standardize_genes
from ._tenx import read_10x_h5, read_10x_mtx
from ._text import read_text
from ._validate import validate_adata

__all__ = ["read"]

logger = logging.getLogger("scagent")

_LOOM_CELL_KEYS = ("CellID", "obs_names", "cell_names")
_LOOM_GENE_KEYS = ("Gene", "var_names", "gene_names")
_FORMATS = ".h5ad, .h5 (10x), .loom, .csv[.gz], .tsv[.gz], .txt[.gz] or a 10x matrix directory"


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for ext in (".csv", ".tsv", ".txt"):
        if name.endswith(ext) or name.endswith(ext + ".gz"):
            return ext
    return path.suffix.lower()


def _read_loom(path: Path) -> AnnData:
    """Read a ``.loom`` file, taking cell and gene names from whichever attribute holds them."""
    with h5py.File(path, "r") as f:
        cols = set(f["col_attrs"].keys()) if "col_attrs" in f else set()
        rows = set(f["row_attrs"].keys()) if "row_attrs" in f else set()
    # loompy's convention (CellID, Gene) first, then what anndata/scanpy write
    obs_key = next((k for k in _LOOM_CELL_KEYS if k in cols), _LOOM_CELL_KEYS[0])
    var_key = next((k for k in _LOOM_GENE_KEYS if k in rows), _LOOM_GENE_KEYS[0])
    return ad.read_loom(path, sparse=True, obs_names=obs_key, var_names=var_key)


def _read_any(path: Path) -> tuple[AnnData, str]:
    if path.is_dir():
        return read_10x_mtx(path), "10x_mtx"
    ext = _suffix(path)
    if ext == ".h5ad":
        return ad.read_h5ad(path), "h5ad"
    if ext in (".h5", ".hdf5"):
        return read_10x_h5(path), "10x_h5"
    if ext == ".loom":
        return _read_loom(path), "loom"
    if ext == ".csv":
        adata, orient = read_text(path, ",")
        return adata, f"csv ({orient})"
    if ext in (".tsv", ".txt"):
        adata, orient = read_text(path, "\t")
        return adata, f"tsv ({orient})"
    msg = f"Unknown file format {path.suffix!r} for {path}. scagent reads {_FORMATS}."
    raise InputDataError(msg)


def read(
    path: str | os.PathLike,
    *,
    gene_column: str | None = None,
    make_unique: bool = False,
) -> AnnData:
    """Read single-cell data from any common format and recognise its genes.

    Parameters
    ----------
    path
        A ``.h5ad``, 10x ``.h5``, ``.loom``, ``.csv``/``.tsv``/``.txt`` (optionally
        gzipped, cells x genes or genes x cells: the orientation is detected) file, or a
        10x directory with ``matrix.mtx[.gz]``, ``barcodes.tsv[.gz]`` and
        ``features.tsv[.gz]`` or ``genes.tsv[.gz]``.
    gene_column
        ``.var`` column holding gene ids when ``var_names`` do not (detected if not given).
    make_unique
        Make duplicated cell ids unique instead of refusing them.

    Returns
    -------
    The data, cells x genes, with ``var_names`` as current gene symbols. Writes
    ``adata.var['scagent_input_id']`` (ids as in the file), ``adata.var['scagent_recognised']``,
    ``adata.var['ensembl_id']`` (human), ``adata.uns['scagent']['genes']`` (id type,
    species, counts) and ``adata.uns['scagent']['read']`` (file and format). Non-gene 10x
    features (antibody capture, CRISPR guides) go to ``adata.obsm['scagent_other_features']``.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    InputDataError
        The file is unreadable, of unknown format, empty, holds NaN/infinite values,
        duplicated cell ids, or too few recognised genes.
    """
    path = Path(path).expanduser()
    if not path.exists():
        msg = f"No such file or directory: {str(path)!r}."
        raise FileNotFoundError(msg)
    try:
        adata, fmt = _read_any(path)
    except (InputDataError, FileNotFoundError):
        raise
    except (OSError, ValueError, KeyError) as err:
        kind = _suffix(path) or "directory"
        msg = f"Could not read {path} (format guessed from its name: {kind}): {err}"
        raise InputDataError(msg) from err
    logger.info("Read %s as %s: %d cells x %d features.", path.name, fmt, *adata.shape)
    if make_unique:
        adata.obs_names_make_unique()
    validate_adata(adata, what=path.name)
    standardize_genes(adata, gene_column=gene_column)
    adata.uns.setdefault(UNS_KEY, {})["read"] = {"path": str(path), "format": fmt}
    return adata
