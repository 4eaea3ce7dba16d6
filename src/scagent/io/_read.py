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
from ._species import select_species
from ._tenx import read_10x_h5, read_10x_mtx
from ._text import read_text
from ._validate import validate_adata

__all__ = ["check_hdf5", "read"]

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


def _what_it_is(head: bytes) -> tuple[str, bool]:
    """Describe a file from its first bytes; the flag says whether it is text."""
    if not head:
        return "an empty file (0 bytes)", False
    if head.startswith(b"\x1f\x8b"):
        return "a gzip-compressed file", False
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive", False
    text = head.decode("utf-8", errors="replace")
    if b"\x00" in head or text.count("\ufffd") > 2:
        return "a binary file of another format", False
    first = text.strip().splitlines()[0][:60] if text.strip() else ""
    return f"a text file (it starts {first!r})", True


def check_hdf5(path: str | os.PathLike) -> None:
    """Raise a clear :class:`~scagent.InputDataError` when a file is not HDF5.

    ``.h5ad``, 10x ``.h5`` and ``.loom`` files are all HDF5; a text table or an interrupted
    download renamed to one of these otherwise fails deep inside h5py.

    Parameters
    ----------
    path
        The file.
    """
    path = Path(path)
    if h5py.is_hdf5(path):
        return
    with open(path, "rb") as fh:
        what, is_text = _what_it_is(fh.read(512))
    kind = _suffix(path)
    msg = (
        f"Could not read {path} (format guessed from its name: {kind}): it is not an HDF5 "
        f"file, as every {kind} file is, but {what}. "
    )
    if is_text:
        msg += (
            "If it is a table of values, give it the extension of its format (.csv, .tsv or "
            ".txt, optionally .gz) and read it again."
        )
    else:
        msg += (
            "It may be damaged or an incomplete download: copy or download it again, or, if "
            f"it is another format, give it that format's extension (scagent reads {_FORMATS})."
        )
    raise InputDataError(msg)


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
    if ext in (".h5ad", ".h5", ".hdf5", ".loom"):
        check_hdf5(path)
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
    species: str | None = None,
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
    species
        ``"human"`` or ``"mouse"``: keep only this species' genes and cells, for a file that
        mixes both (see :func:`scagent.io.select_species`); such a file is refused otherwise.
    make_unique
        Make duplicated cell ids unique instead of refusing them.

    Returns
    -------
    The data, cells x genes, with ``var_names`` as current gene symbols. Writes
    ``adata.var['scagent_input_id']`` (ids as in the file), ``adata.var['scagent_recognised']``,
    ``adata.var['ensembl_id']`` (human), ``adata.uns['scagent']['genes']`` (id type,
    species, counts), ``adata.uns['scagent']['read']`` (file and format) and, with
    ``species``, ``adata.uns['scagent']['species']``. Non-gene 10x features (antibody
    capture, CRISPR guides) go to ``adata.obsm['scagent_other_features']``.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    InputDataError
        The file is unreadable, of unknown format, empty, holds NaN/infinite values,
        duplicated cell ids, too few recognised genes, or mixes human and mouse genes
        (without ``species``).
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
        raise read_error(path, err) from err
    logger.info("Read %s as %s: %d cells x %d features.", path.name, fmt, *adata.shape)
    if make_unique:
        adata.obs_names_make_unique()
    validate_adata(adata, what=path.name)
    if species is not None:
        select_species(adata, species, gene_column=gene_column)
    standardize_genes(adata, gene_column=gene_column, what=path.name)
    adata.uns.setdefault(UNS_KEY, {})["read"] = {"path": str(path), "format": fmt}
    return adata


def read_error(path: Path, err: Exception) -> InputDataError:
    """An :class:`~scagent.InputDataError` for a file a reader failed on, with advice."""
    kind = _suffix(path) or "directory"
    msg = f"Could not read {path} (format guessed from its name: {kind}): {err}"
    text = str(err).lower()
    if isinstance(err, BlockingIOError) or "unable to lock file" in text:
        msg += (
            ". Another program has the file open for writing; wait until it has finished, or "
            "set the environment variable HDF5_USE_FILE_LOCKING=FALSE to read it anyway."
        )
    elif kind in (".h5ad", ".h5", ".hdf5", ".loom"):
        msg += (
            ". The file is HDF5 but not readable as this format: it may be truncated or "
            "damaged (copy or download it again) or be another kind of HDF5 file."
        )
    return InputDataError(msg)
