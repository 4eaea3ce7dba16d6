"""``write_report``: an annotation's pictures and a short Markdown summary, in one folder."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
from anndata import AnnData

from .._constants import OBS_AGREEMENT, OBS_CONF, OBS_ONTOLOGY, OBS_TYPE
from .._errors import InputDataError
from .._files import atomic_file
from ..pl._utils import DPI, annotate_record, call_order, check_obs, cluster_records

__all__ = ["report_files", "write_report"]

logger = logging.getLogger("scagent")

#: Cells above which the report is drawn from a random sample, and the sample's size.
MAX_CELLS, SAMPLE_CELLS = 200_000, 50_000
#: The figures a report may hold, in the order the summary shows them.
FIGURES = ("calls.png", "confidence.png", "markers.png", "confusion.png")
#: Most clusters listed in the summary (largest first).
MAX_CLUSTERS = 60
#: Most columns of the confusion table in the summary (the PNG shows every call).
MAX_TABLE_COLUMNS = 40


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then move the result onto ``path`` in one step."""
    with atomic_file(path) as tmp:
        write(tmp)


def _save_figure(axes, path: Path) -> None:
    import matplotlib.pyplot as plt

    first = axes
    if isinstance(axes, dict):
        first = axes["mainplot_ax"]
    elif isinstance(axes, list):
        first = axes[0]
    fig = first.figure
    try:
        _atomic_write(
            path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
        )
    finally:
        plt.close(fig)


def _as_list(value) -> list:
    """A list from a list, an array (as lists come back from .h5ad) or ``None``."""
    return [] if value is None else [str(v) for v in np.atleast_1d(np.asarray(value, dtype=object))]


def _cell(value) -> str:
    """A value as a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list], align: str) -> list[str]:
    """Markdown table lines; ``align`` holds ``l`` or ``r`` per column."""
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _sample(adata: AnnData, max_cells: int, sample_cells: int, seed: int) -> AnnData:
    """``adata`` in memory, or a random sample of ``sample_cells`` when it is larger than
    ``max_cells`` (never a view of the user's object)."""
    if adata.n_obs <= max_cells:
        return adata.to_memory() if adata.isbacked else adata
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(adata.n_obs, size=min(sample_cells, adata.n_obs), replace=False))
    sub = adata[idx]
    return sub.to_memory() if adata.isbacked else sub.copy()


def _tissue_lines(record: dict) -> list[str]:
    tissue = record.get("tissue") or {}
    decision, how = tissue.get("decision") or "", tissue.get("how", "")
    reason = (tissue.get("evidence") or {}).get("reason")
    if how == "given":
        text = f"**{decision}**, given by the user."
    elif how == "across tissues" or not decision:
        text = "**none**: every cell was annotated against every reference class"
        text += f" ({reason})." if reason else "."
    else:
        scope = "the dataset" if how == "dataset" else "each cluster"
        text = f"**{decision}**, decided for {scope}" + (f": {reason}." if reason else ".")
    per_cluster = (tissue.get("evidence") or {}).get("per_cluster") or {}
    others = sorted({t for t in per_cluster.values() if t != decision})
    if others:
        text += f" Some clusters were annotated otherwise: {', '.join(others)}."
    return ["## Tissue", "", text, ""]


def _calls_lines(adata: AnnData) -> list[str]:
    obs = adata.obs
    calls = obs[OBS_TYPE].astype(str)
    rows = []
    for call in call_order(adata, OBS_TYPE):
        m = (calls == call).to_numpy()
        term = str(obs[OBS_ONTOLOGY][m].iloc[0]) if OBS_ONTOLOGY in obs else ""
        agree = (
            f"{np.mean(obs[OBS_AGREEMENT].to_numpy(dtype=float)[m] >= 1 - 1e-6):.0%}"
            if OBS_AGREEMENT in obs
            else "n/a"
        )
        rows.append(
            [
                call,
                term,
                f"{int(m.sum()):,}",
                f"{m.mean():.1%}",
                f"{np.nanmean(obs[OBS_CONF].to_numpy(dtype=float)[m]):.2f}",
                agree,
            ]
        )
    header = ["call", "Cell Ontology", "cells", "share", "mean confidence", "all experts agree"]
    return ["## Calls", "", *_table(header, rows, "llrrrr"), ""]


def _clusters_lines(adata: AnnData, record: dict) -> list[str]:
    clusters = cluster_records(adata)
    if not clusters:
        return []
    experts = _as_list(record.get("experts"))
    items = sorted(clusters.items(), key=lambda kv: -int(kv[1].get("cells", 0)))
    rows = []
    for name, rec in items[:MAX_CLUSTERS]:
        votes = rec.get("experts") or {}
        genes = rec.get("markers") or {}
        rows.append(
            [
                name,
                f"{int(rec.get('cells', 0)):,}",
                rec.get("tissue", ""),
                rec.get("call", ""),
                f"{float(rec.get('share', 0)):.0%}",
                f"{float(rec.get('mean_confidence', np.nan)):.2f}",
                *[
                    f"{votes[e]['call']} ({float(votes[e]['share']):.0%})" if e in votes else ""
                    for e in experts
                ],
                ", ".join(
                    f"{g} ({s['mean_in_cluster']:.1f} vs {s['mean_elsewhere']:.1f})"
                    for g, s in genes.items()
                )
                or "none found",
            ]
        )
    header = ["cluster", "cells", "tissue", "call", "share", "mean confidence"]
    header += [f"{e} expert" for e in experts] + ["marker genes behind the call"]
    lines = [
        "## Clusters",
        "",
        "The clusters the experts judged, largest first: the call, the share of the cluster's "
        "cells given it, each expert's own call (share of the cluster's cells), and the "
        "marker genes of the call's Cell Ontology term that the cluster expresses most above "
        "the other cells (mean log1p(CP10k) in the cluster vs elsewhere).",
        "",
        *_table(header, rows, "lrlllr" + "l" * (len(experts) + 1)),
    ]
    if len(items) > MAX_CLUSTERS:
        lines += ["", f"... and {len(items) - MAX_CLUSTERS} smaller clusters."]
    return [*lines, ""]


def _fusion_lines(record: dict) -> list[str]:
    fusion = record.get("fusion") or {}
    prov = fusion.get("provenance") or {}
    weights = ", ".join(f"{k} {float(v):.2f}" for k, v in (fusion.get("weights") or {}).items())
    if prov.get("fitted"):
        where = f"learnt on {prov.get('n_tasks', '?')} cross-study tasks"
        if "n_cells" in prov:
            where += f" ({int(prov['n_cells']):,} cells)"
        text = f"Fusion weights {where}: {weights}; smoothing {fusion.get('smoothing', 0)}."
    else:
        text = f"Fusion settings not fitted (defaults): weights {weights}."
    return ["## Fusion", "", text, ""]


def _notes_lines(record: dict) -> list[str]:
    notes = _as_list(record.get("notes"))
    if not notes:
        return []
    return ["## Notes", "", *[f"- {n}" for n in notes], ""]


def _confusion_lines(adata: AnnData, labels_key: str) -> list[str]:
    from ..pl._confusion import confusion_table

    table = confusion_table(adata, labels_key)
    shown = table.iloc[:, :MAX_TABLE_COLUMNS]
    rows = [
        [label, *[int(v) for v in row], int(table.loc[label].sum())]
        for label, row in shown.iterrows()
    ]
    header = [f"{labels_key} \\ call", *shown.columns, "total"]
    lines = [
        f"## Against known labels (`{labels_key}`)",
        "",
        "Cells of each known label (rows) by scagent call (columns); confusion.png shows "
        "the shares of each row.",
        "",
        *_table(header, rows, "l" + "r" * (shown.shape[1] + 1)),
    ]
    if table.shape[1] > MAX_TABLE_COLUMNS:
        lines += ["", f"{table.shape[1] - MAX_TABLE_COLUMNS} rarer calls left out of the table."]
    return [*lines, ""]


def report_files(folder: str | os.PathLike) -> list[str]:
    """The files of the report in ``folder`` (figures, then ``summary.md``)."""
    folder = Path(folder)
    return [n for n in (*FIGURES, "summary.md") if (folder / n).is_file()]


def write_report(
    adata: AnnData,
    folder: str | os.PathLike,
    *,
    labels_key: str | None = None,
    max_cells: int = MAX_CELLS,
    sample_cells: int = SAMPLE_CELLS,
    seed: int = 0,
) -> Path:
    """Write an annotation's pictures and a short Markdown summary into a folder.

    Each file is written aside and then moved into place, so a file in the folder is always
    complete; ``summary.md`` comes last. A figure of an earlier report that this one does not
    draw (``confusion.png`` without ``labels_key``) is removed, so the folder describes one
    annotation; other files in it are left alone. When matplotlib's pyplot is not imported yet, the
    non-interactive Agg backend is chosen (a notebook keeps its own).

    Parameters
    ----------
    adata
        An annotated object (:func:`scagent.tl.annotate`), in memory or backed. Reads the
        ``.obs`` columns and ``.uns['scagent']['annotate']`` it writes, and what
        :func:`scagent.pl.calls` and :func:`scagent.pl.markers` read. Not modified.
    folder
        Folder to write (created if needed; files of the same names are replaced).
    labels_key
        ``.obs`` column of known labels: adds ``confusion.png`` and the confusion table.
    max_cells, sample_cells, seed
        Above ``max_cells`` cells, the figures and the tables drawn from ``.obs`` use a
        random sample of ``sample_cells`` (seeded), and the summary says so.

    Returns
    -------
    The folder, holding ``calls.png`` (embedding coloured by call and confidence),
    ``confidence.png``, ``markers.png`` (when marker genes were recorded),
    ``confusion.png`` (with ``labels_key``) and ``summary.md``.
    """
    if "matplotlib.pyplot" not in sys.modules:
        import matplotlib

        matplotlib.use("Agg")
    from .. import pl

    record = annotate_record(adata)
    check_obs(adata, OBS_TYPE, OBS_CONF, *([labels_key] if labels_key else []))
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    n_total = adata.n_obs
    data = _sample(adata, max_cells, sample_cells, seed)
    sampled = data.n_obs < n_total
    figures: dict[str, str] = {}
    _save_figure(pl.calls(data, show=False), folder / "calls.png")
    figures["calls.png"] = "the embedding coloured by scagent's call and by its confidence"
    _save_figure(pl.confidence(data, show=False), folder / "confidence.png")
    figures["confidence.png"] = "confidence per call, and how many experts back each call"
    try:
        _save_figure(pl.markers(data, show=False), folder / "markers.png")
        figures["markers.png"] = "the marker genes behind each call (dot plot)"
    except InputDataError as err:
        logger.warning("No marker dot plot: %s", err)
    if labels_key:
        _save_figure(pl.confusion(data, labels_key, show=False), folder / "confusion.png")
        figures["confusion.png"] = f"`{labels_key}` (rows) vs scagent's calls (columns), row shares"
    seconds = (record.get("seconds") or {}).get("total")
    experts = ", ".join(_as_list(record.get("experts")))
    intro = f"{n_total:,} cells annotated"
    intro += f" in {float(seconds):.1f} s" if seconds is not None else ""
    intro += f"; experts: {experts}." if experts else "."
    lines = ["# scagent annotation report", "", intro, ""]
    if sampled:
        lines += [
            f"The data hold {n_total:,} cells: the figures and the tables of calls and labels "
            f"below are from a random sample of {data.n_obs:,} cells (seed {seed}); the "
            "cluster table counts every cell.",
            "",
        ]
    lines += _tissue_lines(record)
    lines += _calls_lines(data)
    lines += _clusters_lines(data, record)
    lines += _fusion_lines(record)
    lines += _notes_lines(record)
    if labels_key:
        lines += _confusion_lines(data, labels_key)
    lines += ["## Figures", ""]
    for name, what in figures.items():
        lines += [f"- `{name}`: {what}", "", f"![{name}]({name})", ""]
    for name in FIGURES:
        if name not in figures:
            (folder / name).unlink(missing_ok=True)
    text = "\n".join(lines).rstrip() + "\n"
    _atomic_write(folder / "summary.md", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return folder
