"""The answer, written from the tools' results only (every number comes from a tool)."""

from __future__ import annotations

__all__ = ["answer_text", "consent_question"]

_TOP = 8


def _markers(row: dict) -> str:
    """The marker genes the annotation recorded behind a call (none recorded: nothing)."""
    genes = [str(g) for g in row.get("markers") or [] if str(g).strip()]
    return f"; marker genes behind it: {', '.join(genes)}" if genes else ""


def _types(result: dict) -> list[str]:
    rows = sorted(result.get("cell_types", []), key=lambda r: -r["cells"])
    total = max(1, result.get("n_cells", 0))
    out = [
        f"- {r['cell_type']}: {r['cells']:,} cells ({r['cells'] / total:.0%}), mean confidence "
        f"{r['mean_confidence']:.2f}{_markers(r)}"
        for r in rows[:_TOP]
    ]
    if len(rows) > _TOP:
        rest = sum(r["cells"] for r in rows[_TOP:])
        out.append(f"- {len(rows) - _TOP} more types: {rest:,} cells")
    return out


def _groups(novel: dict) -> list[str]:
    out = []
    for g in novel.get("groups", []):
        near = g.get("closest_known_type") or "none"
        conf = g.get("confidence")
        conf = f", confidence {conf:.2f}" if isinstance(conf, int | float) else ""
        out.append(
            f"- group {g['group']}: {g['cells']:,} cells, closest known type {near}{conf} "
            f"({g.get('judge', '')}): {g.get('explanation', '')}"
        )
    return out


def consent_question(novel: dict) -> str:
    """The question asked before learning novel cells."""
    return (
        f"I found {novel['n_novel_cells']:,} cells of no known type "
        f"({len(novel.get('groups', []))} group(s)). Share these cells with the memory and "
        'learn them as a new type? Answer yes with a name (e.g. "yes, call them tanycyte") '
        "or no."
    )


def _found(request: dict, results: dict) -> list[str]:
    """Earlier requests about the file, the annotation and the novel cells."""
    lines: list[str] = []
    previous = results.get("memory_search", {}).get("previous", [])
    if previous:
        lines.append(
            f"(This file was asked about {len(previous)} time(s) before, last on "
            f"{previous[0]['when'][:16]}.)"
        )
    ann = results.get("annotate")
    if ann:
        tissues = ann.get("tissues", {})
        if request.get("requirement") == "get_tissue":
            total = max(1, ann.get("n_cells", 0))
            parts = [
                f"{t} ({n / total:.0%} of cells)"
                for t, n in sorted(tissues.items(), key=lambda kv: -kv[1])
            ]
            lines.append(f"The cells most likely come from: {', '.join(parts)}.")
        else:
            where = f" (tissue: {', '.join(tissues)})" if tissues else ""
            lines.append(f"I annotated {ann['n_cells']:,} cells{where}:")
            lines += _types(ann)
        lines.append(f"The annotated file is {ann['out']}.")
    novel = results.get("detect_novel")
    if novel is not None:
        if novel.get("n_novel_cells", 0):
            lines.append(
                f"{novel['n_novel_cells']:,} cells look like a type the reference does not contain:"
            )
            lines += _groups(novel)
        else:
            lines.append("No cells of an unknown type were found.")
    return lines


def answer_text(state: dict) -> str:
    """The reply for a finished turn (see :func:`~scagent.agent.build_graph`)."""
    request = state.get("request") or {}
    results = state.get("results") or {}
    lines: list[str] = []
    if request.get("problems"):
        head = "I cannot do that" if request.get("refused") else "I cannot run this request yet"
        lines.append(f"{head}:")
        lines += [f"- {p}" for p in request["problems"]]
        return "\n".join(lines)
    error = results.get("error")
    consent = state.get("consent") or {}
    if not consent.get("asked"):  # after a consent question, what was found was shown with it
        lines += _found(request, results)
    if consent.get("asked") and not consent.get("agree"):
        lines.append("As you declined, the novel cells were not shared or learnt.")
    added = results.get("add_cell_type")
    if added:
        lines.append(
            f"I learnt {added['n_cells']:,} cells as the new type {added['cell_type']!r}"
            f"{' in ' + added['tissue'] if added.get('tissue') else ''}; annotate again to "
            "see it."
        )
        if isinstance(added.get("new_type_recall"), int | float):
            before = added.get("known_macro_f1_before")
            before = f" (before: {before:.3f})" if isinstance(before, int | float) else ""
            lines.append(
                f"Held-out recall of the new type: {added['new_type_recall']:.3f}; known types' "
                f"macro-F1: {added.get('known_macro_f1', float('nan')):.3f}{before}; plugin "
                f"{added.get('plugin', '?')}."
            )
    if error:
        lines.append(f"A tool failed: {error}")
    return "\n".join(lines) if lines else "Nothing to report."
