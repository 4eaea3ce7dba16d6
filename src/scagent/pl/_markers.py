"""``sa.pl.markers``: a dot plot of the marker genes behind each call."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData

from .._constants import OBS_CLUSTER, OBS_ONTOLOGY, OBS_TYPE
from .._errors import InputDataError
from ._utils import (
    call_order,
    canonical_values,
    check_obs,
    cluster_records,
    finish,
    quiet_scanpy,
)

if TYPE_CHECKING:  # matplotlib is imported only when drawing
    from matplotlib.axes import Axes

__all__ = ["marker_genes", "markers"]


def marker_genes(
    adata: AnnData,
    *,
    groupby: str = OBS_TYPE,
    n_genes: int = 5,
    genes: pd.Index | None = None,
    X=None,
) -> dict[str, list[str]]:
    """The marker genes behind each call, as recorded by :func:`scagent.tl.annotate`.

    For each group of ``groupby`` (most cells first), the genes recorded in
    ``uns['scagent']['annotate']['clusters'][c]['markers']`` of the clusters whose cells it
    holds, larger clusters first, best genes first; a gene is listed once, under the first
    group that names it. A call that is no cluster's call (too few cells) gets its Cell
    Ontology term's markers that its cells express most above the others, computed from
    ``X`` when given.

    Parameters
    ----------
    adata
        An annotated object.
    groupby
        ``.obs`` column of the groups (by default the calls).
    n_genes
        Most genes per group.
    genes, X
        Gene names and log1p(CP10k) values (cells x genes) for the fallback; without them,
        a call without a cluster record gets no genes.

    Returns
    -------
    ``{group: [genes]}`` in group order; groups without genes are left out.
    """
    check_obs(adata, groupby, OBS_CLUSTER)
    records = cluster_records(adata)
    groups = adata.obs[groupby].astype(str).to_numpy()
    clusters = adata.obs[OBS_CLUSTER].astype(str).to_numpy()
    pairs = pd.crosstab(groups, clusters)
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for g in call_order(adata, groupby):
        picked: list[str] = []
        row = pairs.loc[g] if g in pairs.index else pd.Series(dtype=int)
        # the clusters this group's cells are in, where the cluster's call is the group's
        # (for groupby=calls) or any cluster otherwise, most of the group's cells first
        for c in row[row > 0].sort_values(ascending=False, kind="stable").index:
            rec = records.get(str(c)) or {}
            if groupby == OBS_TYPE and rec.get("call") != g:
                continue
            picked.extend(rec.get("markers") or {})
        if not picked and groupby == OBS_TYPE and X is not None and genes is not None:
            picked = _fallback(adata, g, genes, X, n_genes)
        kept = [x for x in dict.fromkeys(picked) if x not in seen][:n_genes]
        if kept:
            out[g] = kept
            seen.update(kept)
    return out


def _fallback(adata: AnnData, call: str, genes, X, n_genes: int) -> list[str]:
    """Markers of a call no cluster record names, from its own cells."""
    from ..experts._explain import markers_behind

    rows = np.flatnonzero(adata.obs[OBS_TYPE].astype(str).to_numpy() == call)
    if OBS_ONTOLOGY not in adata.obs or len(rows) == 0:
        return []
    term = str(adata.obs[OBS_ONTOLOGY].iloc[rows[0]])
    return list(markers_behind(X, genes, rows, term, top=n_genes))


def markers(
    adata: AnnData,
    *,
    groupby: str = OBS_TYPE,
    n_genes: int = 5,
    standard_scale: str | None = "var",
    ax=None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
    **kwargs,
) -> dict[str, Axes] | None:
    """A dot plot of the marker genes behind each call (:func:`scanpy.pl.dotplot`).

    The genes are those :func:`scagent.tl.annotate` recorded per cluster as the evidence
    for its call (see :func:`marker_genes`); the values are the log1p(CP10k) the experts
    saw. Dot size: share of the group's cells expressing the gene; colour: mean expression,
    scaled per gene by default.

    Parameters
    ----------
    adata
        An annotated object. Reads ``.obs[groupby]``, ``.obs['scagent_cluster']``,
        ``.obs['scagent_cell_type_ontology_id']``, ``.uns['scagent']['annotate']['clusters']``
        and the expression: ``layers['scagent_log1p_cp10k']`` when present, else the values
        :func:`scagent.pp.prepare` gives on a copy. ``adata`` is not modified.
    groupby
        ``.obs`` column of the rows of the plot (by default the calls).
    n_genes
        Most genes per call.
    standard_scale
        ``"var"`` scales each gene's mean expression to 0-1 (scanpy's option); ``None``
        keeps log1p(CP10k).
    ax
        Axes to draw into.
    show
        Show the figure (default: unless ``save`` is given).
    save
        Image file to write; the format follows its extension.
    **kwargs
        Passed on to :func:`scanpy.pl.dotplot`.

    Returns
    -------
    With ``show=False``: scanpy's dict of Axes (``'mainplot_ax'``, legends...).
    """
    import scanpy as sc

    check_obs(adata, groupby)
    X, genes, _ = canonical_values(adata)
    groups = marker_genes(adata, groupby=groupby, n_genes=n_genes, genes=genes, X=X)
    if not groups:
        msg = (
            "No marker genes recorded for any call (uns['scagent']['annotate']['clusters'] "
            "has none among the data's genes); nothing to plot."
        )
        raise InputDataError(msg)
    flat = [g for gs in groups.values() for g in gs]
    idx = pd.Index(genes).get_indexer(flat)
    light = AnnData(
        X=np.asarray(X[:, idx].toarray(), dtype=np.float32),
        obs=pd.DataFrame(
            {
                groupby: pd.Categorical(
                    adata.obs[groupby].astype(str), categories=call_order(adata, groupby)
                )
            },
            index=adata.obs_names,
        ),
        var=pd.DataFrame(index=pd.Index(flat, dtype=str)),
    )
    options = {
        "standard_scale": standard_scale,
        "var_group_rotation": 90,
        "colorbar_title": "mean expression\n(scaled per gene)"
        if standard_scale == "var"
        else "mean log1p(CP10k)",
        "size_title": "share of cells\nexpressing (%)",
        **kwargs,
    }
    with quiet_scanpy():
        axes = sc.pl.dotplot(
            light, groups, groupby=groupby, use_raw=False, ax=ax, show=False, **options
        )
    fig = axes["mainplot_ax"].figure
    return finish(fig, axes, show=show, save=save)
