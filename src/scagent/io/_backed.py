"""An ``.h5ad`` too large for memory: opened backed, checked as :func:`scagent.read` checks."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
from anndata import AnnData

from .._constants import UNS_KEY
from .._errors import InputDataError
from ._genes import standardize_genes
from ._read import check_hdf5, read_error
from ._validate import validate_adata

__all__ = ["BackedH5ad"]

#: Cells read to check the values before streaming starts.
_SAMPLE = 1000


class BackedH5ad:
    """An ``.h5ad`` file opened backed (``X`` stays on disk), handed out in checked chunks.

    Opening makes :func:`scagent.read`'s checks without loading ``X``: the file is HDF5 and
    AnnData, not empty, has an expression matrix and unique cell ids, the first cells' values
    are finite, and the genes are recognised (once, for the whole file; a file mixing human
    and mouse genes is refused). Every chunk is checked again for non-finite values.

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    gene_column
        ``.var`` column holding gene ids when ``var_names`` do not (detected if not given).

    Attributes
    ----------
    adata
        The backed AnnData (``obs`` and ``var`` as in the file).
    genes
        The gene report of :func:`scagent.io.standardize_genes`.
    """

    def __init__(self, path: str | os.PathLike, *, gene_column: str | None = None) -> None:
        self.path = Path(path).expanduser()
        if not self.path.exists():
            msg = f"No such file or directory: {str(self.path)!r}."
            raise FileNotFoundError(msg)
        check_hdf5(self.path)
        try:
            self.adata = ad.read_h5ad(self.path, backed="r")
        except (OSError, ValueError, KeyError) as err:
            raise read_error(self.path, err) from err
        try:
            self._check(gene_column)
        except BaseException:
            self.close()
            raise

    def _check(self, gene_column: str | None) -> None:
        a, name = self.adata, self.path.name
        if a.n_obs == 0 or a.n_vars == 0:
            msg = f"{name} is empty: {a.n_obs} cells x {a.n_vars} genes."
            raise InputDataError(msg)
        if a.X is None:
            msg = (
                f"{name} has no expression matrix (.X is None); put the counts in .X, e.g. "
                "adata.X = adata.layers['counts'], and write the file again."
            )
            raise InputDataError(msg)
        if not a.obs_names.is_unique:
            dup = a.obs_names[a.obs_names.duplicated()].unique()
            msg = (
                f"{name} has {len(dup)} duplicated cell ids (e.g. {list(dup[:3])}). Make them "
                "unique first: adata = sa.read(path, make_unique=True), then write it again."
            )
            raise InputDataError(msg)
        self._chunk_check(0, min(_SAMPLE, a.n_obs))
        genes = AnnData(var=a.var.copy())
        self.genes = standardize_genes(genes, gene_column=gene_column, what=name)
        self._var = genes.var

    def _chunk_check(self, start: int, stop: int) -> AnnData:
        chunk = self.adata[start:stop].to_memory()
        what = f"{self.path.name} (cells {start:,} to {stop:,})"
        validate_adata(chunk, what=what)
        return chunk

    def sample(self, n: int) -> AnnData:
        """At most ``n`` cells spread evenly over the file, checked, like :meth:`chunk`."""
        import numpy as np

        idx = np.unique(np.linspace(0, self.n_obs - 1, min(n, self.n_obs)).astype(int))
        cells = self.adata[idx].to_memory()
        validate_adata(cells, what=f"{self.path.name} (a sample of {len(idx):,} cells)")
        cells.var = self._var.copy()
        cells.uns.setdefault(UNS_KEY, {})["genes"] = dict(self.genes)
        return cells

    @property
    def n_obs(self) -> int:
        """Number of cells."""
        return self.adata.n_obs

    def chunk(self, start: int, stop: int) -> AnnData:
        """Cells ``start:stop`` in memory, checked, with recognised genes as var_names."""
        chunk = self._chunk_check(start, stop)
        chunk.var = self._var.copy()
        chunk.uns.setdefault(UNS_KEY, {})["genes"] = dict(self.genes)
        return chunk

    def close(self) -> None:
        """Close the file."""
        if self.adata.isbacked:
            self.adata.file.close()

    def __enter__(self) -> BackedH5ad:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
