"""The LLM judge: one structured prompt per candidate group, validated JSON back.

The prompt follows the paper's Fig. 7 (instruction, demonstrations, question): the group's
nearest known cells in both embedding spaces (N_g, N_s) with distances, how far the cells
sit from their called class against that class's own spread, the experts' agreement, the
marker genes of the group against its nearest known type and the marker expert's best
match. The answer must be JSON ``{is_novel, closest_known_type, confidence, explanation}``;
anything else is retried with the schema restated, and after the retries the statistical
judge decides (the result says which judge did).
"""

from __future__ import annotations

import json
import logging
import re

__all__ = ["SCHEMA", "compact_evidence", "judge_with_llm", "novelty_prompt", "parse_judgement"]

logger = logging.getLogger("scagent")

SCHEMA = {
    "type": "object",
    "properties": {
        "is_novel": {"type": "boolean"},
        "closest_known_type": {"type": ["string", "null"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "explanation": {"type": "string"},
    },
    "required": ["is_novel", "closest_known_type", "confidence", "explanation"],
}

INSTRUCTION = """You are a careful single-cell biologist. A group of cells from a user's \
dataset was annotated against a reference of known cell types, and some signs suggest it may \
be a cell type the reference does not contain. Decide whether the group is a NOVEL type (not \
in the reference) or a KNOWN type, from the evidence below:
- neighbours: the types of the group's nearest reference cells in two embedding spaces \
(pretrained, and plugin-tuned), with their share;
- distance_to_class_centroid: the cells' median distance to their called class's centroid \
divided by that class's own 95% quantile (above 1 means farther than 95% of the class's own \
cells);
- signals: uncertainty (1 - confidence), disagreement between experts, similarity_deficit \
(above 0: less similar to the class than 95% of its own reference cells), outside_markers \
(marker probability on cell types the reference lacks), open_set_rejected (share of the \
cells that no known class's own model accepts; a whole new study can raise it everywhere);
- top_genes_vs_nearest_type (mean log expression in the group vs in the nearest known type) \
and markers_suggest (the best-matching Cell Ontology type by markers, and its probability).
Known cell types of the reference: {known}.
Answer with JSON only: {{"is_novel": true|false, "closest_known_type": one of the known types \
or null, "confidence": 0..1, "explanation": one or two sentences citing the evidence}}."""

DEMONSTRATIONS = [
    (
        {
            "cells": 120,
            "annotated_as": {"CD14+ monocyte": 0.97},
            "neighbours": {"pretrained": {"CD14+ monocyte": 0.95, "CD16+ monocyte": 0.05}},
            "distance_to_class_centroid": {"pretrained": 0.6},
            "signals": {"uncertainty": 0.05, "similarity_deficit": -1.2, "outside_markers": 0.02},
            "markers_suggest": {},
        },
        {
            "is_novel": False,
            "closest_known_type": "CD14+ monocyte",
            "confidence": 0.95,
            "explanation": "Neighbours are 95% CD14+ monocytes at small distances and the cells "
            "sit well inside that class's spread.",
        },
    ),
    (
        {
            "cells": 85,
            "annotated_as": {"pancreatic ductal cell": 0.6, "pancreatic acinar cell": 0.4},
            "neighbours": {
                "pretrained": {"pancreatic ductal cell": 0.5, "pancreatic acinar cell": 0.3}
            },
            "distance_to_class_centroid": {"pretrained": 2.4},
            "signals": {"uncertainty": 0.55, "similarity_deficit": 2.1, "outside_markers": 0.7},
            "top_genes_vs_nearest_type": "ALB 3.1 vs 0.0, APOA1 2.7 vs 0.1, TTR 2.2 vs 0.2",
            "markers_suggest": {"cell_type": "hepatocyte", "mean_probability": 0.65},
        },
        {
            "is_novel": True,
            "closest_known_type": "pancreatic ductal cell",
            "confidence": 0.85,
            "explanation": "Far outside every known class (2.4x the 95% distance), experts split, "
            "and hepatocyte markers dominate: a type the reference lacks.",
        },
    ),
    (
        {
            "cells": 30,
            "annotated_as": {"naive CD4+ T cell": 0.7, "memory CD4+ T cell": 0.3},
            "neighbours": {"pretrained": {"naive CD4+ T cell": 0.6, "memory CD4+ T cell": 0.4}},
            "distance_to_class_centroid": {"pretrained": 1.1},
            "signals": {"uncertainty": 0.45, "similarity_deficit": 0.2, "outside_markers": 0.05},
            "markers_suggest": {},
        },
        {
            "is_novel": False,
            "closest_known_type": "naive CD4+ T cell",
            "confidence": 0.7,
            "explanation": "Uncertain between two close known T-cell types, but neighbours are "
            "known "
            "CD4 T cells and no marker points outside the reference.",
        },
    ),
    (
        {
            "cells": 60,
            "annotated_as": {"endothelial cell": 0.8},
            "neighbours": {
                "pretrained": {"endothelial cell": 0.7, "pancreatic stellate cell": 0.2}
            },
            "distance_to_class_centroid": {"pretrained": 1.9},
            "signals": {"uncertainty": 0.6, "similarity_deficit": 1.5, "outside_markers": 0.4},
            "markers_suggest": {
                "cell_type": "endothelial cell of lymphatic vessel",
                "mean_probability": 0.4,
            },
        },
        {
            "is_novel": True,
            "closest_known_type": "endothelial cell",
            "confidence": 0.75,
            "explanation": "Closest to endothelial cells but far beyond their spread, and "
            "markers point to lymphatic endothelium, which the reference lacks.",
        },
    ),
]


def compact_evidence(evidence: dict, *, n_types: int = 3, n_genes: int = 5) -> dict:
    """The part of a group's evidence (:func:`~scagent.novelty.group_evidence`) the LLM
    reads, in few tokens: rounded numbers, the main neighbour types, the top genes as one
    line; ontology ids and bookkeeping left out (the full evidence stays in ``.uns``)."""

    def top(mix: dict, key: str | None = None) -> dict:
        items = [(k, v[key] if key else v) for k, v in mix.items()]
        items.sort(key=lambda kv: -float(kv[1]))
        return {k: round(float(v), 2) for k, v in items[:n_types]}

    out: dict = {"cells": evidence.get("cells")}
    if evidence.get("annotated_as"):
        out["annotated_as"] = top(evidence["annotated_as"])
    if evidence.get("neighbours"):
        out["neighbours"] = {
            space: top(mix, "share") for space, mix in evidence["neighbours"].items() if mix
        }
    dist = evidence.get("distance_to_class_centroid") or {}
    if dist:
        out["distance_to_class_centroid"] = {
            space: round(float(d["median_over_class_q95"]), 2)
            for space, d in dist.items()
            if d.get("median_over_class_q95") is not None
        }
    signals = evidence.get("signals") or {}
    out["signals"] = {k: round(float(v), 2) for k, v in signals.items() if v is not None and v == v}
    genes = evidence.get("top_genes_vs_nearest_type") or {}
    if genes:
        out["top_genes_vs_nearest_type"] = ", ".join(
            f"{g} {v['mean_in_group']:.1f} vs {v['mean_in_known']:.1f}"
            for g, v in list(genes.items())[:n_genes]
        )
    hint = evidence.get("markers_suggest") or {}
    out["markers_suggest"] = (
        {"cell_type": hint["cell_type"], "mean_probability": round(hint["mean_probability"], 2)}
        if hint.get("cell_type")
        else {}
    )
    return out


def novelty_prompt(evidence: dict, known: list[str]) -> str:
    """The prompt for one group (instruction, demonstrations, question); the group's
    evidence is given in its compact form (:func:`compact_evidence`)."""
    parts = [INSTRUCTION.format(known=", ".join(known)), "", "Examples:"]
    for ev, answer in DEMONSTRATIONS:
        parts += [f"Evidence: {json.dumps(ev)}", f"Answer: {json.dumps(answer)}", ""]
    question = json.dumps(compact_evidence(evidence))
    parts += ["Now the group to judge.", f"Evidence: {question}", "Answer:"]
    return "\n".join(parts)


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


def parse_judgement(text: str, known: list[str]) -> dict:
    """The validated judgement in an LLM's answer.

    Raises
    ------
    ValueError
        When the answer has no JSON object of the schema's shape.
    """
    text = _THINK.sub("", str(text))
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        msg = "no JSON object in the answer"
        raise ValueError(msg)
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as err:
        msg = f"invalid JSON: {err}"
        raise ValueError(msg) from err
    if not isinstance(data, dict) or not isinstance(data.get("is_novel"), bool):
        msg = "'is_novel' must be true or false"
        raise ValueError(msg)
    conf = data.get("confidence")
    if not isinstance(conf, int | float) or not 0 <= float(conf) <= 1:
        msg = "'confidence' must be a number in [0, 1]"
        raise ValueError(msg)
    closest = data.get("closest_known_type")
    if closest is not None and closest not in known:
        lowered = {k.lower(): k for k in known}
        closest = lowered.get(str(closest).lower())
    explanation = str(data.get("explanation", "")).strip()
    if not explanation:
        msg = "'explanation' must be a non-empty string"
        raise ValueError(msg)
    return {
        "is_novel": data["is_novel"],
        "closest_known_type": closest,
        "confidence": float(conf),
        "explanation": explanation[:1000],
    }


def _ask(llm, prompt: str) -> str:
    """One completion from an LLM: a scagent backend (``complete(prompt, schema=...)``), a
    langchain chat model (``invoke``), or a plain callable."""
    if hasattr(llm, "complete"):
        return llm.complete(prompt, schema=SCHEMA)
    if hasattr(llm, "invoke"):
        out = llm.invoke(prompt)
        return getattr(out, "content", out)
    return llm(prompt)


def judge_with_llm(
    llm, evidence: dict, known: list[str], *, retries: int = 2
) -> tuple[dict | None, str, int]:
    """Ask the LLM; returns the validated judgement (or ``None``), what happened, and the
    number of LLM calls made (retries included)."""
    prompt = novelty_prompt(evidence, known)
    error = ""
    for attempt in range(retries + 1):
        text = (
            prompt
            if attempt == 0
            else (
                f"{prompt}\n\nYour previous answer was not valid ({error}). Reply with one JSON "
                f"object matching this schema and nothing else: {json.dumps(SCHEMA)}"
            )
        )
        try:
            answer = _ask(llm, text)
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
            logger.warning("LLM judge failed: %s", error)
            return None, f"LLM unavailable ({error})", attempt + 1
        try:
            return parse_judgement(answer, known), "LLM", attempt + 1
        except ValueError as err:
            error = str(err)
    return None, f"LLM output invalid after {retries + 1} calls ({error})", retries + 1
