"""The tools the agent runs, behind one small interface (fakes in tests, ``sa.tl`` for real).

Every result is a JSON-able dict (it is kept in the conversation's checkpoint); the data
itself stays in files: ``annotate`` writes the annotated ``.h5ad``, ``detect_novel`` adds
its columns to it, ``add_cell_type`` reads the cells to learn from it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Protocol

from .._files import atomic_file

__all__ = ["RealTools", "ToolUnavailable", "Tools", "call_markers"]

_NOVEL = "scagent_is_novel"
_GROUP = "scagent_novel_group"


class ToolUnavailable(RuntimeError):
    """A tool the plan needs does not exist in this installation."""


class Tools(Protocol):
    """What the agent's graph calls."""

    def annotate(self, path: str, tissue: str | None, *, out: str) -> dict:
        """Annotate ``path`` into ``out``: ``{"n_cells", "cell_types": [{cell_type, cells,
        mean_confidence, tissue, markers}], "tissues": {tissue: cells}, "out"}``; ``markers``
        (optional) are the genes the annotation recorded behind that call, best first."""

    def detect_novel(self, out: str) -> dict:
        """Find novel cells in the annotated ``out``: ``{"n_novel_cells", "groups":
        [{group, cells, closest_known_type, confidence, explanation, judge}]}``."""

    def add_cell_type(
        self, path: str, cell_type: str, *, tissue: str | None, novel_only: bool
    ) -> dict:
        """Learn the cells of ``path`` (only those flagged novel) as ``cell_type``."""

    def memory_search(self, path: str) -> dict:
        """Earlier requests about the same file: ``{"previous": [...]}``."""


def _write_h5ad(adata, out: Path) -> None:
    with atomic_file(out, suffix=".h5ad") as tmp:
        adata.write_h5ad(tmp)


class RealTools:
    """The ``sa.tl`` tools.

    Parameters
    ----------
    llm
        The LLM the novelty judge may ask (``None``: the statistical judge).
    history
        The :class:`~scagent.memory.History` searched by ``memory_search``.
    """

    def __init__(self, *, llm=None, history=None) -> None:
        self.llm = llm
        self.history = history

    def annotate(self, path: str, tissue: str | None, *, out: str) -> dict:
        from ..tl import annotate_file

        # novelty is the plan's next tool (detect_novel, with this agent's LLM as judge):
        # running it here as well would report two different "unknown" counts
        table = annotate_file(path, out, tissue=tissue, novelty=False)
        behind = call_markers(out)
        rows = [
            {
                "cell_type": str(r.cell_type),
                "tissue": str(r.tissue),
                "cells": int(r.cells),
                "mean_confidence": round(float(r.mean_confidence), 3),
                "markers": behind.get(str(r.cell_type), []),
            }
            for r in table.itertuples()
        ]
        tissues: dict[str, int] = {}
        for r in rows:
            tissues[r["tissue"]] = tissues.get(r["tissue"], 0) + r["cells"]
        return {
            "n_cells": sum(r["cells"] for r in rows),
            "cell_types": rows,
            "tissues": tissues,
            "out": str(out),
        }

    def detect_novel(self, out: str) -> dict:
        import anndata as ad

        from ..tl import detect_novel

        adata = ad.read_h5ad(out)
        detect_novel(adata, llm=self.llm)
        _write_h5ad(adata, Path(out))
        records = adata.uns.get("scagent", {}).get("novel_groups", {})
        groups = []
        for name, rec in records.items():
            verdict = rec.get("judgement", {})
            if not verdict.get("is_novel"):
                continue
            groups.append(
                {
                    "group": str(name),
                    "cells": int((adata.obs[_GROUP].astype(str) == str(name)).sum()),
                    "closest_known_type": verdict.get("closest_known_type"),
                    "confidence": verdict.get("confidence"),
                    "explanation": verdict.get("explanation", ""),
                    "judge": rec.get("judge", ""),
                }
            )
        return {"n_novel_cells": int(adata.obs[_NOVEL].sum()), "groups": groups, "out": out}

    def add_cell_type(
        self, path: str, cell_type: str, *, tissue: str | None, novel_only: bool
    ) -> dict:
        from .. import tl

        add = getattr(tl, "add_cell_type", None)
        if add is None:
            msg = "sa.tl.add_cell_type is not available in this installation yet"
            raise ToolUnavailable(msg)
        from ..io import read

        adata = read(path) if not novel_only else _novel_cells(path)
        result = add(adata, cell_type, tissue=tissue)
        if dataclasses.is_dataclass(result):
            result = {k: v for k, v in dataclasses.asdict(result).items() if k != "history"}
        info = result if isinstance(result, dict) else {"result": str(result)}
        info = json.loads(json.dumps(info, default=_plain))  # the checkpoint stores JSON-able
        return {"cell_type": cell_type, "tissue": tissue, "n_cells": int(adata.n_obs), **info}

    def memory_search(self, path: str) -> dict:
        from ..memory import History

        history = self.history or History()
        name = Path(path).name
        frame = history.queries(limit=200)
        previous = []
        for row in frame.itertuples():
            intent = row.intent or {}
            if isinstance(intent, dict) and Path(str(intent.get("file_path") or "")).name == name:
                previous.append(
                    {
                        "when": row.started,
                        "requirement": intent.get("requirement"),
                        "outcome": (row.outcome or "")[:200],
                    }
                )
        return {"previous": previous[:5]}


def call_markers(out: str | os.PathLike, *, n_genes: int = 3) -> dict[str, list[str]]:
    """The marker genes the annotation of ``out`` recorded behind each call.

    For each call, the genes of ``uns['scagent']['annotate']['clusters'][c]['markers']``
    (:func:`scagent.experts._explain.cluster_report`: the call's known markers that the
    cluster expresses most above the other cells) of the clusters whose call it is, the
    clusters holding most of its cells first. Nothing is inferred: a call no cluster record
    names (too few cells, the novel cells' ``unknown``) gets no genes.

    Returns
    -------
    ``{call: [genes, best first]}``; calls without recorded genes are left out.
    """
    import anndata as ad

    from .._constants import OBS_CLUSTER, OBS_TYPE
    from ..pl._utils import cluster_records

    adata = ad.read_h5ad(out, backed="r")  # .obs and .uns only: the matrix stays on disk
    try:
        if OBS_TYPE not in adata.obs or OBS_CLUSTER not in adata.obs:
            return {}
        obs = adata.obs[[OBS_TYPE, OBS_CLUSTER]].astype(str)
        try:
            records = cluster_records(adata)
        except ValueError:  # no annotation record: nothing to report
            return {}
    finally:
        adata.file.close()
    out_genes: dict[str, list[str]] = {}
    counts = obs.groupby([OBS_TYPE, OBS_CLUSTER]).size()
    for (call, cluster), _ in counts.sort_values(ascending=False, kind="stable").items():
        rec = records.get(cluster) or {}
        if rec.get("call") != call:
            continue
        genes = out_genes.setdefault(call, [])
        for gene in _best_first(rec.get("markers") or {}):
            if gene not in genes and len(genes) < n_genes:
                genes.append(str(gene))
    return {call: genes for call, genes in out_genes.items() if genes}


def _best_first(markers: dict) -> list[str]:
    """Genes by how much more the cluster expresses them than the other cells (the order
    :func:`~scagent.experts._explain.markers_behind` chose; .h5ad keeps dict keys sorted)."""

    def lift(item) -> float:
        ev = item[1] if isinstance(item[1], dict) else {}
        try:
            return float(ev["mean_in_cluster"]) - float(ev["mean_elsewhere"])
        except (KeyError, TypeError, ValueError):
            return float("-inf")

    return [str(g) for g, _ in sorted(markers.items(), key=lift, reverse=True)]


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)


def _novel_cells(path: str):
    import anndata as ad

    adata = ad.read_h5ad(path)
    if _NOVEL not in adata.obs:
        msg = f"{path} has no novel-cell calls (run detect_novel first)"
        raise ValueError(msg)
    return adata[adata.obs[_NOVEL].to_numpy(dtype=bool)].copy()
