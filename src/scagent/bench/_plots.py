"""Benchmark figures: confusion matrix, per-tissue radar chart and UMAP panels.

Every function draws with matplotlib's Agg backend, writes a PNG and closes its figure.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

__all__ = ["confusion_plot", "radar_plot", "umap_plot"]

_DPI = 120
_OTHER = "(other)"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    finally:
        plt.close(fig)


def confusion_plot(y_true, y_pred, path: str | Path, *, title: str, max_classes: int = 40) -> None:
    """Draw a row-normalised confusion matrix (rows: true label, so the diagonal is recall).

    Parameters
    ----------
    y_true
        True label of each cell.
    y_pred
        Predicted label of each cell.
    path
        PNG file to write (parent folders are created).
    title
        Figure title.
    max_classes
        Most labels to show; when the union of true and predicted labels is larger, the
        most frequent ones (true and predicted counts together) are kept and the rest are
        pooled into one ``(other)`` label.

    Returns
    -------
    None. Rows of labels that never occur in the truth (predicted only) are left blank.

    Raises
    ------
    ValueError
        If the two label arrays differ in length or are empty, or ``max_classes < 2``.
    """
    y_true = np.asarray(y_true, dtype=str)
    y_pred = np.asarray(y_pred, dtype=str)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        msg = f"y_true and y_pred must be 1-D of equal length; got {y_true.shape}, {y_pred.shape}."
        raise ValueError(msg)
    if len(y_true) == 0:
        raise ValueError("confusion_plot needs at least one cell.")
    if max_classes < 2:
        raise ValueError(f"max_classes must be at least 2; got {max_classes}.")

    labels, counts = np.unique(np.concatenate([y_true, y_pred]), return_counts=True)
    if len(labels) > max_classes:
        order = np.lexsort((labels, -counts))  # most frequent first, ties by name
        keep = set(labels[order[: max_classes - 1]].tolist())
        y_true = np.where(np.isin(y_true, list(keep)), y_true, _OTHER)
        y_pred = np.where(np.isin(y_pred, list(keep)), y_pred, _OTHER)
        labels = np.array([*sorted(keep), _OTHER])
    k = len(labels)
    pos = {lab: i for i, lab in enumerate(labels.tolist())}
    counts_mat = np.zeros((k, k))
    np.add.at(counts_mat, ([pos[t] for t in y_true], [pos[p] for p in y_pred]), 1)
    row = counts_mat.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(row > 0, counts_mat / np.where(row > 0, row, 1), np.nan)

    plt = _pyplot()
    side = max(5.0, 0.3 * k + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    cmap = plt.get_cmap("Blues").with_extremes(bad="0.92")
    im = ax.imshow(np.ma.masked_invalid(frac), cmap=cmap, vmin=0.0, vmax=1.0)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("fraction of true label")
    tick_size = 8 if k <= 20 else 6 if k <= 45 else 5
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(labels, rotation=90, fontsize=tick_size)
    ax.set_yticklabels(labels, fontsize=tick_size)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title)
    for i in range(k):
        if np.isfinite(frac[i, i]):
            v = frac[i, i]
            ax.text(
                i,
                i,
                f"{v:.2f}".lstrip("0") if v < 1 else "1",
                ha="center",
                va="center",
                fontsize=max(tick_size - 1, 4),
                color="white" if v > 0.5 else "black",
            )
    _save(fig, path)


def radar_plot(values: dict[str, dict[str, float]], path: str | Path, *, title: str) -> None:
    """Draw one polygon per method over one spoke per tissue (weighted F1, radius 0 to 1).

    Parameters
    ----------
    values
        Method name -> {tissue: weighted F1}. Spokes are the union of tissues, sorted; a
        missing or NaN value is drawn at 0.
    path
        PNG file to write (parent folders are created).
    title
        Figure title.

    Returns
    -------
    None.

    Raises
    ------
    ValueError
        If there are no methods or no tissues.
    """
    tissues = sorted({t for per in values.values() for t in per})
    if not values or not tissues:
        raise ValueError("radar_plot needs at least one method with at least one tissue.")
    n = len(tissues)
    angles = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    closed = np.append(angles, angles[0])

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6.0), subplot_kw={"projection": "polar"})
    ax.set_theta_offset(np.pi / 2)
    ax.set_theta_direction(-1)
    colors = _colors(len(values))
    for (method, per), color in zip(values.items(), colors):
        r = np.array([per.get(t, np.nan) for t in tissues], dtype=float)
        r = np.nan_to_num(r, nan=0.0)
        r = np.append(r, r[0])
        ax.plot(closed, r, color=color, linewidth=1.5, label=method)
        ax.fill(closed, r, color=color, alpha=0.08)
    ax.set_ylim(0.0, 1.0)
    ax.set_yticks([0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_yticklabels(["0.2", "0.4", "0.6", "0.8", "1.0"], fontsize=7)
    ax.set_xticks(angles)
    ax.set_xticklabels(tissues, fontsize=8 if n <= 16 else 6)
    ax.set_title(title, pad=20)
    ax.legend(loc="upper left", bbox_to_anchor=(1.12, 1.05), fontsize=8, frameon=False)
    _save(fig, path)


def umap_plot(
    embeddings: dict[str, np.ndarray],
    labels,
    path: str | Path,
    *,
    title: str,
    seed: int = 0,
) -> None:
    """Draw a 2-D UMAP of each embedding side by side, coloured by label, one shared legend.

    Parameters
    ----------
    embeddings
        Panel name -> embedding (cells x dimensions); all of the same cells, in the order
        of ``labels``.
    labels
        Label of each cell (colours; ``tab20``, extended when there are more than 20).
    path
        PNG file to write (parent folders are created).
    title
        Figure title.
    seed
        ``random_state`` of UMAP (cosine metric, 15 neighbours, ``min_dist=0.3``).

    Returns
    -------
    None.

    Raises
    ------
    ValueError
        If there are no embeddings, an embedding is not 2-D, or its number of rows differs
        from the number of labels, or there are fewer than 3 cells.
    """
    labels = np.asarray(labels, dtype=str)
    if not embeddings:
        raise ValueError("umap_plot needs at least one embedding.")
    n = len(labels)
    if n < 3:
        raise ValueError(f"umap_plot needs at least 3 cells; got {n}.")
    for name, emb in embeddings.items():
        shape = np.shape(emb)
        if len(shape) != 2 or shape[0] != n:
            msg = f"Embedding {name!r} has shape {shape}; expected ({n}, dimensions)."
            raise ValueError(msg)

    with warnings.catch_warnings():
        # umap warns on import when the optional TensorFlow (ParametricUMAP) is missing
        warnings.filterwarnings("ignore", "Tensorflow not installed", ImportWarning)
        import umap

    classes = sorted(set(labels.tolist()))
    colors = dict(zip(classes, _colors(len(classes))))
    point_colors = np.array([colors[c] for c in labels])
    size = 3.0 if n > 2000 else 6.0

    plt = _pyplot()
    k = len(embeddings)
    fig, axes = plt.subplots(1, k, figsize=(4.5 * k, 4.6), squeeze=False)
    for ax, (name, emb) in zip(axes[0], embeddings.items()):
        reducer = umap.UMAP(
            n_neighbors=min(15, n - 1),
            min_dist=0.3,
            metric="cosine",
            random_state=seed,
            n_jobs=1,  # a seed forces one thread; saying so avoids umap's warning
        )
        xy = reducer.fit_transform(np.asarray(emb, dtype=np.float32))
        order = np.random.default_rng(seed).permutation(n)  # no label drawn wholly on top
        ax.scatter(
            xy[order, 0],
            xy[order, 1],
            c=point_colors[order],
            s=size,
            linewidths=0,
            rasterized=True,
        )
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("UMAP1", fontsize=8)
        ax.set_ylabel("UMAP2", fontsize=8)
    handles = [
        plt.Line2D([], [], marker="o", linestyle="", markersize=5, color=colors[c], label=c)
        for c in classes
    ]
    fig.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=7 if len(classes) <= 30 else 5,
        frameon=False,
        ncol=1 if len(classes) <= 30 else 2,
    )
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def _colors(n: int) -> list:
    """``n`` distinct colours: tab20, then tab20b and tab20c, then cycled."""
    import matplotlib

    base: list = []
    for name in ("tab20", "tab20b", "tab20c"):
        base.extend(matplotlib.colormaps[name].colors)
    if n <= len(base):
        return base[:n]
    return [base[i % len(base)] for i in range(n)]
