"""What every ``sa.pl`` function shares: reading the annotation, colours, showing and saving."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._constants import LAYER_LOG1P, OBS_TYPE, UNS_KEY
from .._errors import InputDataError

__all__ = [
    "canonical_values",
    "check_obs",
    "cluster_records",
    "finish",
    "palette",
]

#: Resolution of saved figures.
DPI = 120


def annotate_record(adata: AnnData) -> dict:
    """``adata.uns['scagent']['annotate']``, or a clear error when ``annotate`` never ran."""
    record = adata.uns.get(UNS_KEY, {}).get("annotate")
    if not record:
        msg = (
            "adata holds no scagent annotation (no .uns['scagent']['annotate']): run "
            "sa.tl.annotate(adata) or `scagent annotate FILE -o OUT.h5ad` first."
        )
        raise InputDataError(msg)
    return record


def check_obs(adata: AnnData, *keys: str) -> None:
    """Raise a clear error when a column is missing from ``adata.obs``."""
    missing = [k for k in keys if k not in adata.obs]
    if not missing:
        return
    hint = (
        " Run sa.tl.annotate(adata) first."
        if any(k.startswith("scagent_") for k in missing)
        else ""
    )
    msg = (
        f"{', '.join(map(repr, missing))} not in adata.obs; columns: "
        f"{list(adata.obs.columns)}.{hint}"
    )
    raise InputDataError(msg)


def cluster_records(adata: AnnData) -> dict[str, dict]:
    """Per-cluster records of the annotation, keyed as ``.obs['scagent_cluster']``.

    A file annotated in chunks (``scagent annotate`` on a large ``.h5ad``) keeps one set of
    records per chunk; they are merged under the chunk-prefixed cluster names
    (``"<chunk>:<cluster>"``) that its ``.obs`` uses.
    """
    record = annotate_record(adata)
    streamed = record.get("streamed") or {}
    chunks = streamed.get("chunks")
    if isinstance(chunks, dict):  # a list of records may come back from .h5ad as a dict
        chunks = [chunks[k] for k in sorted(chunks, key=int)]
    if chunks is None or len(chunks) == 0:
        return dict(record.get("clusters") or {})
    merged = {}
    for part in chunks:
        k = int(part["chunk"]["index"])
        for c, rec in (part.get("clusters") or {}).items():
            merged[f"{k}:{c}"] = rec
    return merged


def call_order(adata: AnnData, key: str = OBS_TYPE) -> list[str]:
    """The categories of ``.obs[key]`` that occur, most frequent first."""
    counts = adata.obs[key].astype(str).value_counts(sort=False)
    counts = counts[counts > 0]
    return sorted(counts.index, key=lambda c: (-counts[c], c))


def palette(adata: AnnData, key: str, categories: list[str]) -> dict[str, str]:
    """A colour per category: the user's ``uns[f'{key}_colors']`` when it fits, else
    scanpy's default palettes (categories in their ``.obs`` order, so colours stay stable
    from one figure to the next)."""
    from scanpy.plotting import palettes

    col = adata.obs[key]
    cats = (
        [str(c) for c in col.cat.categories]
        if isinstance(col.dtype, pd.CategoricalDtype)
        else sorted(col.astype(str).unique())
    )
    given = adata.uns.get(f"{key}_colors")
    if given is not None and len(given) == len(cats):
        colours = list(given)
    else:
        n = len(cats)
        base = (
            palettes.default_20
            if n <= 20
            else palettes.default_28
            if n <= 28
            else palettes.default_102
        )
        colours = [base[i % len(base)] for i in range(n)]
    lookup = dict(zip(cats, colours))
    return {c: lookup.get(c, "#808080") for c in categories}


def canonical_values(adata: AnnData) -> tuple[sp.csr_matrix, pd.Index, str]:
    """log1p(CP10k) expression as the experts saw it: (cells x genes, gene names, source).

    ``layers['scagent_log1p_cp10k']`` when present; otherwise :func:`scagent.pp.prepare`
    on a copy (genes renamed to current symbols, as in the annotation); when that fails
    (e.g. too few recognised genes), ``X`` as it is.
    """
    if LAYER_LOG1P in adata.layers:
        return sp.csr_matrix(adata.layers[LAYER_LOG1P]), adata.var_names, LAYER_LOG1P
    from ..pp import prepare

    light = AnnData(
        X=adata.X,
        obs=pd.DataFrame(index=adata.obs_names),
        var=adata.var,
        layers=dict(adata.layers),
    )
    if adata.raw is not None:
        light.raw = adata.raw.to_adata()
    quiet = logging.getLogger("scagent")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its warnings were given when the data were annotated
    try:
        prepared = prepare(light, copy=True)
    except InputDataError:
        return sp.csr_matrix(adata.X, dtype=np.float32), adata.var_names, "X"
    finally:
        quiet.setLevel(level)
    return sp.csr_matrix(prepared.layers[LAYER_LOG1P]), prepared.var_names, "prepared copy"


@contextmanager
def quiet_scanpy() -> Iterator[None]:
    """Silence matplotlib's notice about ``Colormap.set_bad``, which scanpy's plots call
    (nothing a user can act on; scanpy will change it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The set_bad function", category=PendingDeprecationWarning
        )
        yield


def finish(fig, axes, *, show: bool | None, save: str | os.PathLike | None):
    """Save and/or show a figure, as scanpy does.

    ``save`` writes the figure (format from the extension) and then closes it;
    ``show=None`` shows it unless it was saved. Returns ``axes`` when ``show`` is ``False``,
    else ``None``.
    """
    import matplotlib.pyplot as plt

    if save is not None:
        path = Path(save).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
    shown = (save is None) if show is None else show
    if shown:
        plt.show()
    if save is not None:
        plt.close(fig)
    return axes if show is False else None
