"""``sa.pl.calls``: the embedding coloured by scagent's call and its confidence."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData

from .._constants import OBS_AGREEMENT, OBS_CONF, OBS_PROB_PREFIX, OBS_TISSUE_CONF, OBS_TYPE
from .._errors import InputDataError
from ._utils import canonical_values, check_obs, finish, palette, quiet_scanpy

if TYPE_CHECKING:  # matplotlib is imported only when drawing
    from matplotlib.axes import Axes

__all__ = ["calls", "umap_coordinates"]

logger = logging.getLogger("scagent")

#: ``.obsm`` key of the UMAP that :func:`calls` computes when the data have none.
OBSM_UMAP = "X_scagent_umap"
#: Genes (highest variance) and principal components behind a computed UMAP.
N_GENES, N_PCS = 2000, 30

_TITLES = {OBS_TYPE: "scagent call", OBS_CONF: "confidence", OBS_AGREEMENT: "experts agreeing"}


def _is_share(key: str) -> bool:
    """Columns holding a probability or share, drawn on a fixed 0-1 colour scale."""
    return key in (OBS_CONF, OBS_AGREEMENT, OBS_TISSUE_CONF) or key.startswith(OBS_PROB_PREFIX)


def umap_coordinates(adata: AnnData, *, seed: int = 0) -> np.ndarray:
    """A 2-D UMAP of the cells, computed without touching ``adata``.

    The log1p(CP10k) values the experts saw (``layers['scagent_log1p_cp10k']``, else
    :func:`scagent.pp.prepare` on a copy, else ``X``) are cut to the 2,000 genes of highest
    variance; then 30 principal components, 15 exact nearest neighbours and umap-learn's
    UMAP.

    Parameters
    ----------
    adata
        Cells x genes.
    seed
        Seed of the PCA and UMAP.

    Returns
    -------
    (cells, 2) coordinates.
    """
    import warnings

    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    with warnings.catch_warnings():
        # umap warns on import when the optional TensorFlow (ParametricUMAP) is missing
        warnings.filterwarnings("ignore", "Tensorflow not installed", ImportWarning)
        import umap

    X, _, _ = canonical_values(adata)
    n = X.shape[0]
    if n < 4:
        msg = f"A UMAP needs at least 4 cells; got {n}. Pass basis= an embedding of .obsm."
        raise InputDataError(msg)
    mean = np.asarray(X.mean(axis=0)).ravel()
    var = np.asarray(X.multiply(X).mean(axis=0)).ravel() - mean**2
    keep = np.sort(np.argsort(-var, kind="stable")[: min(N_GENES, X.shape[1])])
    dense = X[:, keep].toarray()
    n_comps = max(2, min(N_PCS, n - 1, dense.shape[1] - 1))
    pcs = PCA(n_comps, random_state=seed).fit_transform(dense - dense.mean(axis=0))
    pcs = pcs.astype(np.float32)
    k = min(15, n - 1)
    # exact neighbours from scikit-learn: no pynndescent, whose compilation alone takes
    # longer than the whole UMAP of 10,000 cells
    dist, idx = NearestNeighbors(n_neighbors=k).fit(pcs).kneighbors(pcs)
    reducer = umap.UMAP(
        n_neighbors=k,
        random_state=seed,
        n_jobs=1,  # a seed forces one thread; saying so avoids umap's warning
        precomputed_knn=(idx, dist, None),
    )
    with warnings.catch_warnings():  # "transform will be unavailable": not needed here
        warnings.filterwarnings("ignore", "precomputed_knn", UserWarning)
        return np.asarray(reducer.fit_transform(pcs), dtype=np.float32)


def _coordinates(adata: AnnData, basis: str | None, key_added: str | None):
    """(coordinates, description) of the embedding to draw."""
    if basis is not None:
        key = basis if basis in adata.obsm else f"X_{basis}"
        if key not in adata.obsm:
            msg = f"basis={basis!r} is not in adata.obsm; keys: {list(adata.obsm)}."
            raise InputDataError(msg)
        return np.asarray(adata.obsm[key])[:, :2], key
    for key in ("X_umap", OBSM_UMAP):
        if key in adata.obsm:
            return np.asarray(adata.obsm[key])[:, :2], key
    logger.info("No UMAP in adata.obsm: computing one on a copy (%d cells).", adata.n_obs)
    coords = umap_coordinates(adata)
    if key_added is not None:
        adata.obsm[key_added] = coords
    return coords, "UMAP computed by scagent"


def _panels(light: AnnData, colors: list[str], ncols: int) -> list:
    """A figure with one square panel per colour and room on its right for the legend or
    colour bar (so long cell-type names never cover the next panel)."""
    import matplotlib.pyplot as plt

    side, pad = 4.0, 0.5  # inches
    margins = []
    for c in colors:
        col = light.obs[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            longest = max((len(str(x)) for x in col.cat.categories), default=1)
            n = len(col.cat.categories)
            n_cols_legend = 1 if n <= 14 else 2 if n <= 30 else 3  # as scanpy lays them out
            margins.append(0.5 + n_cols_legend * (0.3 + 0.075 * longest))
        else:
            margins.append(0.9)
    ncols = max(1, min(ncols, len(colors)))
    nrows = -(-len(colors) // ncols)
    slot = side + max(margins) + pad
    fig = plt.figure(figsize=(slot * ncols, (side + 0.8) * nrows))
    width, height = slot * ncols, (side + 0.8) * nrows
    axes = []
    for i in range(len(colors)):
        r, k = divmod(i, ncols)
        left = (k * slot + pad) / width
        bottom = ((nrows - r - 1) * (side + 0.8) + 0.3) / height
        axes.append(fig.add_axes((left, bottom, side / width, side / height)))
    return axes


def calls(
    adata: AnnData,
    *,
    basis: str | None = None,
    color: str | Sequence[str] = (OBS_TYPE, OBS_CONF),
    key_added: str | None = None,
    size: float | None = None,
    ncols: int = 2,
    ax=None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
    **kwargs,
) -> Axes | list[Axes] | None:
    """The embedding coloured by scagent's call and by its confidence.

    Parameters
    ----------
    adata
        An annotated object (:func:`scagent.tl.annotate`). Reads the ``.obs`` columns in
        ``color`` and ``.obsm[basis]``; ``uns['<column>_colors']`` when it fits.
    basis
        ``.obsm`` key of the embedding (``"umap"`` and ``"X_umap"`` both work). By default
        ``X_umap``, else ``X_scagent_umap``, else a UMAP computed on the fly on a copy (see
        :func:`umap_coordinates`; seconds for thousands of cells, a minute or two for
        50,000).
    color
        ``.obs`` columns, one panel each. Probabilities and shares (``scagent_confidence``,
        ``scagent_agreement``, ``scagent_prob_*``) are drawn on a fixed 0-1 scale.
    key_added
        When a UMAP is computed, keep it in ``adata.obsm[key_added]`` (e.g.
        ``"X_scagent_umap"``, which later calls reuse). By default ``adata`` is not modified.
    size
        Point size (scanpy's default by cell count).
    ncols
        Panels per row.
    ax
        Axes to draw into (one ``color`` only).
    show
        Show the figure (default: unless ``save`` is given).
    save
        Image file to write; the format follows its extension.
    **kwargs
        Passed on to :func:`scanpy.pl.embedding` (``legend_loc``, ``cmap``, ``frameon``...).

    Returns
    -------
    With ``show=False``: the Axes, or a list of Axes for several panels.
    """
    import scanpy as sc

    colors = [color] if isinstance(color, str) else list(color)
    if not colors:
        msg = "color must name at least one .obs column."
        raise InputDataError(msg)
    check_obs(adata, *colors)
    if ax is not None and len(colors) > 1:
        msg = f"ax= takes one panel; got color={colors!r}: pass one column or no ax."
        raise InputDataError(msg)
    coords, name = _coordinates(adata, basis, key_added)
    light = AnnData(obs=adata.obs[colors].copy(), obsm={"X_plot": coords})
    for c in colors:
        col = light.obs[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            col = col.cat.remove_unused_categories()
            light.obs[c] = col
            cats = [str(x) for x in col.cat.categories]
            light.uns[f"{c}_colors"] = list(palette(adata, c, cats).values())
        elif col.dtype == object or pd.api.types.is_bool_dtype(col):
            light.obs[c] = pd.Categorical(col.astype(str))
    if ax is None:
        axes = _panels(light, colors, ncols)
    else:
        axes = [ax]
    for a, c in zip(axes, colors):
        options = {
            "title": _TITLES.get(c, c),
            "vmin": 0.0 if _is_share(c) else None,
            "vmax": 1.0 if _is_share(c) else None,
            "cmap": "viridis",
            "frameon": False,
            **kwargs,
        }
        with quiet_scanpy():
            sc.pl.embedding(light, basis="X_plot", color=c, size=size, ax=a, show=False, **options)
    label = {"X_pca": "PC", "X_tsne": "tSNE"}.get(name, "UMAP" if "umap" in name.lower() else name)
    for a in axes if isinstance(axes, list) else [axes]:
        a.set_xlabel(f"{label} 1")
        a.set_ylabel(f"{label} 2")
    return finish(axes[0].figure, axes if len(axes) > 1 else axes[0], show=show, save=save)
