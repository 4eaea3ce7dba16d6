"""Benchmark sections, the printed table and ``docs/benchmarks.md``."""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ._readme import update_readme

__all__ = ["Section", "write_report"]

_COLUMNS = [
    ("task", "task", "{}"),
    ("protocol", "protocol", "{}"),
    ("genes", "genes", "{}"),
    ("method", "method", "{}"),
    ("accuracy", "accuracy", "{:.3f}"),
    ("macro_f1", "macro-F1", "{:.3f}"),
    ("weighted_f1", "weighted-F1", "{:.3f}"),
    ("lineage_accuracy", "lineage accuracy", "{:.3f}"),
    ("ece", "ECE", "{:.3f}"),
    ("confidently_wrong", "confidently wrong", "{:.1%}"),
    ("tissue decided", "tissue decided", "{}"),
    ("n", "cells scored", "{:d}"),
    ("coverage", "coverage", "{:.0%}"),
    ("train_s", "train s", "{:.1f}"),
    ("predict_s", "predict s", "{:.2f}"),
    ("train_peak_mb", "train peak MB", "{:.0f}"),
    ("predict_peak_mb", "predict peak MB", "{:.0f}"),
]


@dataclass
class Section:
    """One benchmark's results: rows of metrics plus figures and notes."""

    title: str
    description: str
    rows: list[dict] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, file name)
    notes: list[str] = field(default_factory=list)
    extra_tables: list[tuple[str, list[dict]]] = field(default_factory=list)
    #: (caption, file name, function writing the PNG at a path), drawn by write_report
    plots: list[tuple[str, str, Callable[[Path], None]]] = field(default_factory=list)


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return spec.format(value)


def _table(rows: list[dict], columns) -> list[list[str]]:
    cols = [c for c in columns if any(c[0] in r for r in rows)]
    if not cols:  # a section with its own columns (e.g. the agent's): show them all
        return _generic_table(rows)
    out = [[c[1] for c in cols]]
    out += [[_fmt(r.get(key), spec) for key, _, spec in cols] for r in rows]
    return out


def _generic_table(rows: list[dict]) -> list[list[str]]:
    keys = list(dict.fromkeys(k for r in rows for k in r))

    def cell(v) -> str:
        if isinstance(v, float):
            return _fmt(v, "{:,.0f}" if abs(v) >= 100 else "{:.3g}")
        return f"{v:,}" if isinstance(v, int) else str(v)

    return [keys] + [[cell(r.get(k, "")) for k in keys] for r in rows]


def _tissue_table(rows: list[dict]) -> list[list[str]]:
    tissues = sorted({t for r in rows for t in r.get("per_tissue_weighted_f1", {})})
    out = [["protocol", "genes", "method", *tissues]]
    for r in rows:
        per = r.get("per_tissue_weighted_f1", {})
        out.append(
            [r["protocol"], r["genes"], r["method"], *[_fmt(per.get(t), "{:.3f}") for t in tissues]]
        )
    return out


def _markdown(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
    return "\n".join(lines)


def _text(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _figures(section: Section, fig_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in section.rows if "per_tissue_weighted_f1" in r]
    if not rows:
        return
    slug = section.title.lower().replace(" ", "_").replace("-", "_")
    fig_dir.mkdir(parents=True, exist_ok=True)
    labels = [f"{r['method']}\n{r['protocol']}, {r['genes'].split(' ')[0]}" for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["macro_f1"] for r in rows], height=0.4, label="macro-F1")
    ax.barh(y + 0.2, [r["weighted_f1"] for r in rows], height=0.4, label="weighted-F1")
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right")
    ax.set_title(section.title)
    fig.tight_layout()
    name = f"{slug}_f1.png"
    fig.savefig(fig_dir / name, dpi=120)
    plt.close(fig)
    section.figures.append(("macro- and weighted-F1 per method and protocol", name))

    table = _tissue_table(rows)
    tissues = table[0][3:]
    values = np.array([[np.nan if v == "n/a" else float(v) for v in row[3:]] for row in table[1:]])
    fig, ax = plt.subplots(figsize=(1.0 * len(tissues) + 4, 0.4 * len(rows) + 1.5))
    im = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(tissues)), tissues, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), [lab.replace("\n", " | ") for lab in labels], fontsize=7)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if not np.isnan(values[i, j]):
                ax.text(
                    j,
                    i,
                    f"{values[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if values[i, j] < 0.6 else "black",
                )
    fig.colorbar(im, ax=ax, label="weighted-F1")
    ax.set_title(f"{section.title}: weighted-F1 per tissue")
    fig.tight_layout()
    name = f"{slug}_per_tissue.png"
    fig.savefig(fig_dir / name, dpi=120)
    plt.close(fig)
    section.figures.append(("weighted-F1 per tissue", name))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in title.lower()).strip("_")


def save_section(section: Section, folder: Path, *, command: str) -> Path:
    """Keep one section's results as JSON (``docs/bench/<title>.json``), with when and how
    they were measured."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "title": section.title,
        "description": section.description,
        "rows": section.rows,
        "extra_tables": [{"title": t, "rows": r} for t, r in section.extra_tables],
        "notes": section.notes,
        "figures": section.figures,
        "command": command,
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    path = folder / f"{_slug(section.title)}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_jsonable(record), indent=1) + "\n")
    tmp.replace(path)
    return path


def load_sections(folder: Path, order: list[str] | None = None) -> list[dict]:
    """Saved sections (see :func:`save_section`), in ``order`` of titles first."""
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    rank = {t: i for i, t in enumerate(order or [])}
    return sorted(records, key=lambda r: (rank.get(r["title"], len(rank)), r["title"]))


def _none_to_nan(rows: list[dict]) -> list[dict]:
    return [{k: (float("nan") if v is None else v) for k, v in r.items()} for r in rows]


def render_markdown(records: list[dict]) -> str:
    """``docs/benchmarks.md`` from saved sections."""
    md = [
        "# scagent benchmarks",
        "",
        "Generated by `scagent bench` from the results kept in `docs/bench/*.json`; each "
        "section says the command and date of the run that measured it, and every method in "
        "a section ran in that same run. Times are wall-clock seconds on that machine; "
        "compare methods within a table, not across machines. Peak MB is the rise in resident "
        "memory while the step ran.",
        "",
    ]
    for r in records:
        rows = _none_to_nan(r["rows"])
        md += [f"## {r['title']}", "", r["description"], ""]
        md += [f"*Measured by `{r['command']}` on {r['date']} ({r['machine']}).*", ""]
        if rows:
            md += [_markdown(_table(rows, _COLUMNS)), ""]
        tissue_rows = [x for x in rows if "per_tissue_weighted_f1" in x]
        if tissue_rows:
            md += ["Weighted-F1 per tissue:", "", _markdown(_tissue_table(tissue_rows)), ""]
        for t in r["extra_tables"]:
            md += [f"{t['title']}:", "", _markdown(_generic_table(_none_to_nan(t["rows"]))), ""]
        md += [f"- {n}" for n in r["notes"]] + ([""] if r["notes"] else [])
        md += [f"![{cap}](figures/{name})\n" for cap, name in r["figures"]]
    return "\n".join(md) + "\n"


def write_report(
    sections: list[Section], out: Path, *, command: str, order: list[str] | None = None
) -> str:
    """Print-ready text of this run's sections; keeps each section's results in
    ``docs/bench/`` beside ``out``, draws its PNGs, and rewrites ``out`` (Markdown) from every
    kept section, so a run of one suite updates its section only."""
    fig_dir = out.parent / "figures"
    text_parts = []
    for s in sections:
        _figures(s, fig_dir)
        for caption, name, draw in s.plots:
            fig_dir.mkdir(parents=True, exist_ok=True)
            draw(fig_dir / name)
            s.figures.append((caption, name))
        save_section(s, out.parent / "bench", command=command)
        text_parts += [f"== {s.title} ==", _text(_table(s.rows, _COLUMNS)), ""] if s.rows else []
        tissue_rows = [r for r in s.rows if "per_tissue_weighted_f1" in r]
        if tissue_rows:
            text_parts += ["weighted-F1 per tissue:", _text(_tissue_table(tissue_rows)), ""]
        for title, rows in s.extra_tables:
            text_parts += [f"{title}:", _text(_generic_table(rows)), ""]
        text_parts += [f"- {n}" for n in s.notes] + ([""] if s.notes else [])
    out.parent.mkdir(parents=True, exist_ok=True)
    records = load_sections(out.parent / "bench", order)
    out.write_text(render_markdown(records))
    update_readme(out.parent.parent / "README.md", records)
    return "\n".join(text_parts)
