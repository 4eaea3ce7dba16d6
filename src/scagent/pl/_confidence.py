"""``sa.pl.confidence``: how sure scagent is of each call, and whether its experts agree."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData

from .._constants import OBS_AGREEMENT, OBS_CONF, OBS_TYPE
from .._errors import InputDataError
from ._utils import call_order, check_obs, finish, palette

if TYPE_CHECKING:  # matplotlib is imported only when drawing
    from matplotlib.axes import Axes

__all__ = ["agreement_shares", "confidence"]

#: Agreement levels (share of experts whose own best class is the call), lowest first.
_LEVELS = ("none", "some", "most", "all")
_LEVEL_COLOURS = ("#d7301f", "#fc8d59", "#91bfdb", "#4575b4")


def _horizontal() -> dict:
    """The keyword for horizontal violins and boxes (``orientation`` from matplotlib 3.10)."""
    import matplotlib

    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def agreement_shares(adata: AnnData, *, groupby: str = OBS_TYPE) -> pd.DataFrame:
    """Share of each group's cells by how many experts back the call.

    Levels of ``.obs['scagent_agreement']``: ``all`` (1), ``most`` (at least half),
    ``some`` (above 0), ``none``.

    Parameters
    ----------
    adata
        Reads ``.obs[groupby]`` and ``.obs['scagent_agreement']``.
    groupby
        ``.obs`` column of the groups.

    Returns
    -------
    (groups, levels) shares, rows summing to 1, groups most frequent first.
    """
    check_obs(adata, groupby, OBS_AGREEMENT)
    a = adata.obs[OBS_AGREEMENT].to_numpy(dtype=float)
    level = np.select(
        [a >= 1 - 1e-6, a >= 0.5 - 1e-6, a > 1e-6], ["all", "most", "some"], default="none"
    )
    table = pd.crosstab(adata.obs[groupby].astype(str).to_numpy(), level, normalize="index")
    table = table.reindex(columns=list(_LEVELS), fill_value=0.0)
    return table.reindex(call_order(adata, groupby)).fillna(0.0)


def confidence(
    adata: AnnData,
    *,
    groupby: str = OBS_TYPE,
    kind: str = "violin",
    agreement: bool | None = None,
    ax=None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
) -> Axes | list[Axes] | None:
    """The distribution of confidence per call, with the experts' agreement beside it.

    Parameters
    ----------
    adata
        An annotated object. Reads ``.obs[groupby]``, ``.obs['scagent_confidence']`` and,
        for the agreement panel, ``.obs['scagent_agreement']``; ``uns['<groupby>_colors']``
        when it fits.
    groupby
        ``.obs`` column of the groups (one row each, most cells first).
    kind
        ``"violin"`` or ``"box"``.
    agreement
        Add a panel with the share of each group's cells backed by all, most, some or none
        of the experts (default: when ``.obs['scagent_agreement']`` exists and no ``ax`` is
        given).
    ax
        Axes for the confidence panel (then no agreement panel).
    show
        Show the figure (default: unless ``save`` is given).
    save
        Image file to write; the format follows its extension.

    Returns
    -------
    With ``show=False``: the Axes, or ``[confidence_ax, agreement_ax]`` with the agreement
    panel.
    """
    import matplotlib.pyplot as plt

    if kind not in ("violin", "box"):
        msg = f"kind must be 'violin' or 'box', got {kind!r}."
        raise InputDataError(msg)
    check_obs(adata, groupby, OBS_CONF)
    if agreement is None:
        agreement = ax is None and OBS_AGREEMENT in adata.obs
    if agreement and ax is not None:
        msg = "agreement=True draws a second panel: leave ax out, or pass agreement=False."
        raise InputDataError(msg)
    order = call_order(adata, groupby)
    groups = adata.obs[groupby].astype(str).to_numpy()
    conf = adata.obs[OBS_CONF].to_numpy(dtype=float)
    data = [conf[(groups == g) & np.isfinite(conf)] for g in order]
    n = len(order)
    longest = max((len(g) for g in order), default=1)
    if ax is None:
        widths = [5.0, 2.6] if agreement else [5.0]
        fig, axes = plt.subplots(
            1,
            len(widths),
            figsize=(sum(widths) + 0.08 * longest, 1.2 + 0.38 * n),
            sharey=True,
            gridspec_kw={"width_ratios": widths, "wspace": 0.05},
            squeeze=False,
        )
        axes = list(axes[0])
        ax = axes[0]
    else:
        axes = [ax]
    fig = ax.figure
    pos = np.arange(n)[::-1]  # most frequent group on top
    colours = palette(adata, groupby, order)
    drawable = [i for i, d in enumerate(data) if len(d) > 0]
    if kind == "violin":
        if drawable:
            parts = ax.violinplot(
                [data[i] for i in drawable],
                positions=pos[drawable],
                widths=0.8,
                showmedians=True,
                showextrema=False,
                **_horizontal(),
            )
            for body, i in zip(parts["bodies"], drawable):
                body.set_facecolor(colours[order[i]])
                body.set_edgecolor("black")
                body.set_linewidth(0.5)
                body.set_alpha(0.8)
            parts["cmedians"].set_color("black")
    else:
        box = ax.boxplot(
            [data[i] for i in drawable],
            positions=pos[drawable],
            widths=0.6,
            patch_artist=True,
            showfliers=False,
            **_horizontal(),
        )
        for patch, i in zip(box["boxes"], drawable):
            patch.set_facecolor(colours[order[i]])
        for med in box["medians"]:
            med.set_color("black")
    ax.set_yticks(pos, labels=[f"{g} ({len(d):,})" for g, d in zip(order, data)])
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("confidence")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("confidence per call" if groupby == OBS_TYPE else f"confidence by {groupby}")
    if agreement:
        _agreement_panel(axes[1], agreement_shares(adata, groupby=groupby), pos)
    return finish(fig, axes if len(axes) > 1 else ax, show=show, save=save)


def _agreement_panel(ax, shares: pd.DataFrame, pos: np.ndarray) -> None:
    left = np.zeros(len(shares))
    for level, colour in zip(_LEVELS, _LEVEL_COLOURS):
        v = shares[level].to_numpy()
        ax.barh(pos, v, left=left, color=colour, height=0.7, label=level, edgecolor="white")
        left += v
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of cells")
    ax.set_title("experts backing the call")
    ax.tick_params(axis="y", left=False)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12 - 0.4 / max(len(shares), 1)),
        ncols=4,
        fontsize=7,
        frameon=False,
        handlelength=1,
        columnspacing=0.8,
    )
