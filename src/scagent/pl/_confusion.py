"""``sa.pl.confusion``: scagent's calls against labels the user already has."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData

from .._constants import OBS_TYPE
from ._utils import check_obs, finish

if TYPE_CHECKING:  # matplotlib is imported only when drawing
    from matplotlib.axes import Axes

__all__ = ["confusion", "confusion_table"]

#: Largest table (rows x columns) whose cells get their numbers written in.
MAX_ANNOTATED = 600


def confusion_table(
    adata: AnnData, labels_key: str, *, key: str = OBS_TYPE, normalize: bool = False
) -> pd.DataFrame:
    """Cells of each known label (rows) by call (columns).

    Rows are the labels in their category order (sorted otherwise); columns are the calls
    ordered so that each row's most frequent call comes as early as it can, which puts the
    matches on a diagonal whatever the two vocabularies are.

    Parameters
    ----------
    adata
        Reads ``.obs[labels_key]`` and ``.obs[key]``.
    labels_key
        ``.obs`` column of the known labels.
    key
        ``.obs`` column of the calls.
    normalize
        Divide each row by its total (each row then sums to 1).

    Returns
    -------
    The table: counts (``pd.crosstab`` of the two columns), or row shares.
    """
    check_obs(adata, labels_key, key)
    truth = adata.obs[labels_key]
    calls = adata.obs[key].astype(str)
    table = pd.crosstab(truth.astype(str), calls)
    if isinstance(truth.dtype, pd.CategoricalDtype):
        rows = [str(c) for c in truth.cat.categories if str(c) in table.index]
        table = table.loc[rows]
    order: list[str] = []
    for _, row in table.iterrows():
        for col in row[row > 0].sort_values(ascending=False, kind="stable").index:
            if col not in order:
                order.append(col)
                break
    order += [c for c in table.sum().sort_values(ascending=False).index if c not in order]
    table = table[order]
    table.index.name, table.columns.name = labels_key, key
    if normalize:
        totals = table.sum(axis=1).replace(0, 1)
        table = table.div(totals, axis=0)
    return table


def confusion(
    adata: AnnData,
    labels_key: str,
    *,
    key: str = OBS_TYPE,
    normalize: bool = True,
    annotate: bool | None = None,
    cmap: str = "Blues",
    ax=None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
) -> Axes | None:
    """The confusion of scagent's calls against known labels.

    Rows are the known labels, columns the calls (see :func:`confusion_table` for the
    order); by default each row is divided by its number of cells, so a row reads as where
    that label's cells went.

    Parameters
    ----------
    adata
        Reads ``.obs[labels_key]`` and ``.obs[key]``.
    labels_key
        ``.obs`` column of the known labels (e.g. ``"bulk_labels"``, ``"cell_type"``).
    key
        ``.obs`` column of the calls.
    normalize
        Shares of each row (``False``: cell counts).
    annotate
        Write the number in each cell (default: when the table has at most 600 cells).
    cmap
        Colour map.
    ax
        Axes to draw into.
    show
        Show the figure (default: unless ``save`` is given).
    save
        Image file to write; the format follows its extension.

    Returns
    -------
    With ``show=False``: the Axes.
    """
    import matplotlib.pyplot as plt

    table = confusion_table(adata, labels_key, key=key, normalize=normalize)
    counts = confusion_table(adata, labels_key, key=key) if normalize else table
    values = table.to_numpy(dtype=float)
    n_rows, n_cols = values.shape
    if ax is None:
        longest_col = max((len(c) for c in table.columns), default=1)
        fig, ax = plt.subplots(
            figsize=(
                min(2.5 + 0.45 * n_cols + 0.08 * max(map(len, table.index), default=1), 30),
                min(1.5 + 0.4 * n_rows + 0.07 * longest_col, 30),
            )
        )
    fig = ax.figure
    vmax = 1.0 if normalize else max(values.max(), 1.0)
    im = ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(np.arange(n_cols), labels=list(table.columns), rotation=60, ha="right")
    ax.set_yticks(np.arange(n_rows), labels=list(table.index))
    ax.set_xlabel(f"scagent call ({key})" if key != OBS_TYPE else "scagent call")
    ax.set_ylabel(f"known label ({labels_key})")
    if annotate is None:
        annotate = n_rows * n_cols <= MAX_ANNOTATED
    if annotate:
        n = counts.to_numpy()
        for i in range(n_rows):
            for j in range(n_cols):
                if n[i, j] == 0:
                    continue
                v = values[i, j]
                text = f"{v:.2f}".lstrip("0") if normalize else f"{int(v)}"
                ax.text(
                    j,
                    i,
                    text if text != "1.00" else "1",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v > 0.6 * vmax else "black",
                )
    label = "share of the row's cells" if normalize else "cells"
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label=label)
    total = int(counts.to_numpy().sum())
    ax.set_title(f"{labels_key} vs scagent ({total:,} cells)")
    return finish(fig, ax, show=show, save=save)
