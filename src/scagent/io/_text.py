"""Delimited text matrices in either orientation."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._errors import InputDataError
from ._genes import detect_gene_ids

__all__ = ["read_text"]

logger = logging.getLogger("scagent")


def read_text(path: Path, sep: str) -> tuple[AnnData, str]:
    """Read a ``.csv``/``.tsv`` matrix and orient it cells x genes.

    Returns the AnnData and the orientation found in the file
    (``"cells x genes"`` or ``"genes x cells"``).
    """
    try:
        df = pd.read_csv(path, sep=sep, index_col=0)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        kind = "tab" if sep == "\t" else "comma"
        msg = f"Could not parse {path} as a {kind}-separated matrix: {err}"
        raise InputDataError(msg) from err
    if df.empty:
        msg = f"{path} holds no matrix values (found {df.shape[0]} rows x {df.shape[1]} columns)."
        raise InputDataError(msg)
    non_numeric = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        msg = (
            f"{path}: columns {non_numeric[:5]} are not numeric. The file must be a matrix with "
            "row names in the first column and column names in the first row."
        )
        raise InputDataError(msg)
    rows = detect_gene_ids(df.index.astype(str))[2]
    cols = detect_gene_ids(df.columns.astype(str))[2]
    orientation = "genes x cells" if rows > cols else "cells x genes"
    if orientation == "genes x cells":
        df = df.T
    logger.info("%s: read as %s (%d x %d).", path.name, orientation, *df.shape)
    X = sp.csr_matrix(df.to_numpy(dtype=np.float32))
    adata = AnnData(
        X=X,
        obs=pd.DataFrame(index=df.index.astype(str)),
        var=pd.DataFrame(index=df.columns.astype(str)),
    )
    return adata, orientation
