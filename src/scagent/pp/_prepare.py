"""``sa.pp.prepare``: bring any expression matrix to the canonical model input."""

from __future__ import annotations

import logging
from copy import deepcopy

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from .._constants import LAYER_COUNTS, LAYER_LOG1P, TARGET_SUM, UNS_KEY
from .._errors import InputDataError
from ..io._genes import check_recognised, standardize_genes
from ..io._validate import validate_adata
from ._content import COUNT_LIKE, LOG_CONTENTS, detect_content, linear_values

__all__ = ["log1p_cp10k", "prepare"]

logger = logging.getLogger("scagent")

_COUNT_LAYERS = ("counts", "raw_counts", "count", "umi", "UMI")
#: Contents from which the raw counts come back exactly.
_RECOVERED_COUNTS = ("log1p_counts", "log2_counts")
#: What prepare does to each content, for the record in ``.uns['scagent']['prepare']``.
_TRANSFORMS = {
    "counts": "normalised to 10,000 per cell, then log1p",
    "noninteger_counts": "normalised to 10,000 per cell, then log1p",
    "normalized": "rescaled to 10,000 per cell, then log1p",
    "log1p_counts": "expm1 gave back the raw counts (whole numbers); normalised to 10,000 "
    "per cell, then log1p",
    "log2_counts": "2**x - 1 gave back the raw counts (whole numbers); normalised to 10,000 "
    "per cell, then log1p",
    "log1p_normalized": "expm1, rescaled to 10,000 per cell, then log1p",
    "log2_normalized": "2**x - 1, rescaled to 10,000 per cell, then log1p",
    "log1p": "kept as it is",
}


def log1p_cp10k(X, content: str) -> sp.csr_matrix:
    """log1p of counts per 10,000 from a matrix whose content is known.

    Parameters
    ----------
    X
        Cells x genes matrix.
    content
        What ``X`` holds, as returned by :func:`~scagent.pp.detect_content`.

    Returns
    -------
    A new float32 CSR matrix. Cells with no counts stay all zero. Log-scale content is
    transformed back first (``expm1`` or ``2 ** x - 1``); ``"log1p"`` content (log values
    that are no known transform of counts or equal totals, typically a gene subset) is kept
    as it is.
    """
    if content == "log1p":
        return sp.csr_matrix(X, dtype=np.float32, copy=True)
    if content in LOG_CONTENTS:
        M = sp.csr_matrix(linear_values(X, content))
    elif content in COUNT_LIKE:
        M = sp.csr_matrix(X, dtype=np.float64, copy=True)
    else:
        msg = f"Cannot normalise content {content!r}."
        raise ValueError(msg)
    sums = np.asarray(M.sum(axis=1)).ravel()
    scale = np.divide(TARGET_SUM, sums, out=np.zeros_like(sums), where=sums > 0)
    M = sp.csr_matrix(sp.diags(scale) @ M)
    M.data = np.log1p(M.data)
    return sp.csr_matrix(M, dtype=np.float32)


def _candidates(adata: AnnData):
    """Possible sources of expression values, best first: (name, matrix, var or None)."""
    for key in _COUNT_LAYERS:
        if key in adata.layers:
            yield f"layers[{key!r}]", adata.layers[key], None
    if adata.raw is not None:
        raw_var = adata.raw.var if not adata.raw.var_names.equals(adata.var_names) else None
        yield ".raw", adata.raw.X, raw_var
    yield "X", adata.X, None


def _choose_source(adata: AnnData):
    found = []
    for name, M, var in _candidates(adata):
        content = detect_content(M)
        found.append((name, content))
        if content in ("counts", *_RECOVERED_COUNTS) or (name == "X" and content != "scaled"):
            return name, M, var, content
    # no counts and X is scaled: fall back to a non-negative .raw
    for name, M, var in _candidates(adata):
        content = detect_content(M)
        if name == ".raw" and content != "scaled":
            return name, M, var, content
    desc = ", ".join(f"{n} holds {c}" for n, c in found)
    msg = (
        f"No usable expression values: {desc}. scagent needs raw counts or (log-)normalised "
        "values, not scaled data with negatives. Put the raw counts in adata.layers['counts'] "
        "or adata.raw (e.g. adata.raw = adata before sc.pp.scale), or read the original file."
    )
    raise InputDataError(msg)


def prepare(adata: AnnData, *, copy: bool = False) -> AnnData | None:
    """Detect what the data hold and compute the canonical log1p(CP10k) representation.

    The source is chosen in this order: a counts layer (``counts``, ``raw_counts``...),
    ``.raw`` if it holds counts, ``X`` unless it is scaled, then a non-negative ``.raw``.
    When ``.raw`` is used and its genes differ from ``X``'s, the object takes ``.raw``'s
    genes and ``X`` becomes the canonical matrix. Otherwise ``X`` is left as it is.

    Log-transformed input is recognised by transforming it back (see
    :func:`~scagent.pp.detect_content`): log1p or log2(x + 1) of raw counts gives the counts
    back exactly (they are kept in ``layers['counts']``); log1p or log2(x + 1) of CP10k,
    CPM or any other equal-total values is rescaled to 10,000 per cell. Log values that are
    neither (e.g. a gene subset after normalisation) are kept as they are, with a warning,
    since their scale cannot be told: give the raw counts for an exact result.

    Parameters
    ----------
    adata
        Cells x genes data, e.g. from :func:`scagent.read`.
    copy
        Return a prepared copy instead of modifying ``adata``.

    Returns
    -------
    ``None``, or the prepared copy when ``copy=True``. Sets

    ``adata.layers['scagent_log1p_cp10k']``
        log1p of counts per 10,000.
    ``adata.layers['counts']``
        Raw counts, when the data have them (also when recovered from log-transformed counts).
    ``adata.uns['scagent']['prepare']``
        ``source``, ``content`` (see :func:`~scagent.pp.detect_content`), ``transform`` (what
        was done to it), ``target_sum``, ``has_counts``, ``n_empty_cells``, ``layer`` and,
        when the result is uncertain, ``warning``.
    ``adata.uns['scagent']['genes']``
        Gene-id report (see :func:`scagent.read`), computed if missing.

    Raises
    ------
    InputDataError
        Empty, NaN or infinite data, duplicated cell ids, scaled data without counts, or
        too few recognised genes.
    """
    validate_adata(adata)
    name, M, raw_var, content = _choose_source(adata)
    canonical = log1p_cp10k(M, content)
    if raw_var is not None:
        # with copy=True nothing of the input may be shared (uns is nested, modified below)
        target = AnnData(
            X=canonical.copy(),
            obs=adata.obs.copy(),
            var=raw_var.copy(),
            uns=deepcopy(dict(adata.uns)) if copy else dict(adata.uns),
            obsm={k: v.copy() for k, v in adata.obsm.items()} if copy else dict(adata.obsm),
            obsp={k: v.copy() for k, v in adata.obsp.items()} if copy else dict(adata.obsp),
        )
        if not copy:
            adata._init_as_actual(
                X=target.X,
                obs=target.obs,
                var=target.var,
                uns=target.uns,
                obsm=target.obsm,
                obsp=target.obsp,
            )
            target = adata
        standardize_genes(target, check=True)
    else:
        target = adata.copy() if copy else adata
        genes = target.uns.get(UNS_KEY, {}).get("genes")
        if genes is None:
            standardize_genes(target, check=True)
        else:
            check_recognised(genes)
    target.layers[LAYER_LOG1P] = canonical
    if content in _RECOVERED_COUNTS:
        target.layers[LAYER_COUNTS] = sp.csr_matrix(linear_values(M, content), dtype=np.float32)
    elif content == "counts" and not (name == f"layers[{LAYER_COUNTS!r}]" and raw_var is None):
        # a copy: X and .raw are often changed in place later (sc.pp.normalize_total, log1p)
        target.layers[LAYER_COUNTS] = M.copy() if raw_var is None else sp.csr_matrix(M, copy=True)
    n_empty = int((np.asarray(canonical.sum(axis=1)).ravel() == 0).sum())
    if n_empty:
        logger.warning("%d cells have no counts; their canonical values are all zero.", n_empty)
    record = {
        "source": name,
        "content": content,
        "transform": f"{name}: {_TRANSFORMS[content]}",
        "target_sum": TARGET_SUM,
        "has_counts": content in ("counts", *_RECOVERED_COUNTS),
        "n_empty_cells": n_empty,
        "layer": LAYER_LOG1P,
    }
    if content == "log1p":
        record["warning"] = (
            f"{name} holds log-scale values that are not log1p or log2(x + 1) of counts or of "
            "equal per-cell totals (typically a subset of genes after normalisation), so they "
            "cannot be brought to log1p(CP10k) exactly and are used as they are. Give the raw "
            "counts (adata.layers['counts'] or adata.raw) for an exact result."
        )
        logger.warning(record["warning"])
    target.uns.setdefault(UNS_KEY, {})["prepare"] = record
    logger.info("Prepared %d cells (%s) from %s.", target.n_obs, content, record["transform"])
    return target if copy else None
