"""10x Genomics formats: Matrix Market directories and HDF5 files (v2 and v3)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp
from anndata import AnnData

from .._constants import OBSM_OTHER_FEATURES
from .._errors import InputDataError

__all__ = ["read_10x_h5", "read_10x_mtx"]

_GEX = "Gene Expression"


def _find(folder: Path, *names: str) -> Path | None:
    for name in names:
        for cand in (folder / name, folder / f"{name}.gz"):
            if cand.exists():
                return cand
    return None


def _split_features(
    X: sp.csr_matrix, obs_names: list[str], ids: list[str], names: list[str], types: list[str]
) -> AnnData:
    """AnnData of gene-expression features; other features go to ``.obsm``."""
    types_arr = np.asarray(types)
    gex = types_arr == _GEX
    # index by the (unique) feature ids; the gene symbols stay in a column and are used
    # for ids the gene table does not know
    var = pd.DataFrame(
        {"gene_symbols": np.asarray(names)[gex], "feature_types": types_arr[gex]},
        index=ad.utils.make_index_unique(pd.Index(np.asarray(ids)[gex], dtype=str)),
    )
    adata = AnnData(
        X=X[:, gex].tocsr(), obs=pd.DataFrame(index=pd.Index(obs_names, dtype=str)), var=var
    )
    if (~gex).any():
        other = X[:, ~gex].toarray()
        cols = [f"{n} ({t})" for n, t in zip(np.asarray(names)[~gex], types_arr[~gex])]
        adata.obsm[OBSM_OTHER_FEATURES] = pd.DataFrame(other, index=adata.obs_names, columns=cols)
    return adata


def read_10x_mtx(folder: Path) -> AnnData:
    """Read a 10x ``matrix.mtx[.gz]`` directory (Cell Ranger 2 or 3 layout)."""
    mtx = _find(folder, "matrix.mtx")
    feats = _find(folder, "features.tsv", "genes.tsv")
    barcodes = _find(folder, "barcodes.tsv")
    if mtx is None or feats is None or barcodes is None:
        msg = (
            f"{folder} is not a 10x matrix directory: it needs matrix.mtx, barcodes.tsv and "
            "features.tsv (or genes.tsv), optionally gzipped."
        )
        raise InputDataError(msg)
    try:
        X = sp.csr_matrix(scipy.io.mmread(str(mtx)).T, dtype=np.float32)
    except (ValueError, OSError) as err:
        msg = f"Could not read {mtx}: {err}. Is it a Matrix Market file?"
        raise InputDataError(msg) from err
    f = pd.read_csv(feats, sep="\t", header=None, dtype=str)
    bc = pd.read_csv(barcodes, sep="\t", header=None, dtype=str)[0].tolist()
    if X.shape != (len(bc), len(f)):
        msg = (
            f"{folder}: matrix.mtx is {X.shape[1]} x {X.shape[0]} (features x barcodes) but "
            f"there are {len(f)} features and {len(bc)} barcodes; the files do not belong together."
        )
        raise InputDataError(msg)
    ids = f[0].tolist()
    names = f[1].tolist() if f.shape[1] > 1 else ids
    types = f[2].tolist() if f.shape[1] > 2 else [_GEX] * len(f)
    return _split_features(X, bc, ids, names, types)


def _s(arr) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in arr]


def read_10x_h5(path: Path) -> AnnData:
    """Read a 10x HDF5 matrix (Cell Ranger 2 ``<genome>/`` or 3+ ``matrix/`` layout)."""
    with h5py.File(path, "r") as f:
        if "matrix" in f:
            g = f["matrix"]
            feats = g["features"]
            ids, names = _s(feats["id"][:]), _s(feats["name"][:])
            types = _s(feats["feature_type"][:]) if "feature_type" in feats else [_GEX] * len(ids)
        elif len(f.keys()) >= 1 and "genes" in f[next(iter(f.keys()))]:
            g = f[next(iter(f.keys()))]
            ids, names = _s(g["genes"][:]), _s(g["gene_names"][:])
            types = [_GEX] * len(ids)
        else:
            msg = f"{path} is an HDF5 file but not a 10x matrix (no 'matrix' group)."
            raise InputDataError(msg)
        n_feat, n_cells = (int(x) for x in g["shape"][:])
        X = sp.csc_matrix(
            (g["data"][:].astype(np.float32), g["indices"][:], g["indptr"][:]),
            shape=(n_feat, n_cells),
        ).T.tocsr()
        barcodes = _s(g["barcodes"][:])
    return _split_features(X, barcodes, ids, names, types)
