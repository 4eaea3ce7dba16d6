"""Agent benchmark: intent accuracy per parser, LLM calls per request, latency per turn.

The requests are hand-written (``scagent/agent/data/intents.json``): a main set, on which
the deterministic rules were developed; a held-out set written afterwards, whose misses
then guided a second round of changes (text-grounded tissue and type names); and a second
held-out set written before that round. A request is
fully right when all four fields (requirement, tissue, file path, cell type) equal the
expected ones (cell-type names compared in lower case). Parsers: the deterministic rules
(always) and the embedded LLM (when ``scagent[llm]`` is installed), the latter as the agent
uses it: JSON checked against the schema and the text, retried, then the rules. Latency is
one turn's parse plus answer writing (the tools' own time excluded; the answer is written
from the tool results without an LLM).
"""

from __future__ import annotations

import json
import logging
import os
import time
from importlib.resources import files

import numpy as np

from ._report import Section

__all__ = ["agent_suite", "intent_requests", "score_parser"]

logger = logging.getLogger("scagent")

FIELDS = ("requirement", "tissue", "file_path", "cell_type")


def intent_requests() -> dict[str, list[dict]]:
    """The benchmark's requests: ``{"main": [...], "held_out": [...], "held_out_2": [...]}``."""
    data = json.loads(files("scagent.agent").joinpath("data/intents.json").read_text())
    return {
        "main": data["requests"],
        "held_out": data["held_out"],
        "held_out_2": data["held_out_2"],
    }


def _same(field: str, got, expected) -> bool:
    if field == "cell_type" and got is not None and expected is not None:
        return got.strip().lower() == expected.strip().lower()
    return got == expected


def score_parser(requests: list[dict], llm=None) -> dict:
    """Parse every request; accuracy per field, fully-right rate, calls, latency, misses."""
    from ..agent import answer_text, parse_request

    right = {f: 0 for f in FIELDS}
    full, calls, seconds, fallbacks, misses = 0, [], [], 0, []
    for r in requests:
        t0 = time.perf_counter()
        request = parse_request(r["text"], llm=llm)
        answer_text({"request": request.to_dict(), "results": {}})
        seconds.append(time.perf_counter() - t0)
        calls.append(request.llm_calls)
        fallbacks += llm is not None and request.parser != "llm"
        ok = {f: _same(f, getattr(request, f), r[f]) for f in FIELDS}
        for f in FIELDS:
            right[f] += ok[f]
        full += all(ok.values())
        logger.info(
            "%s %.1f s, %d call(s), %s: %s -> %s",
            "right" if all(ok.values()) else "WRONG",
            seconds[-1],
            request.llm_calls,
            request.parser[:40],
            r["text"][:60],
            json.dumps(request.fields()),
        )
        if not all(ok.values()):
            misses.append({"text": r["text"], "got": request.fields(), "parser": request.parser})
    n = len(requests)
    return {
        "requests": n,
        "fully_right": full / n,
        **{f"{f}_right": right[f] / n for f in FIELDS},
        "llm_calls_per_request": float(np.mean(calls)),
        "fell_back_to_rules": fallbacks,
        "latency_median_s": float(np.median(seconds)),
        "latency_p90_s": float(np.quantile(seconds, 0.9)),
        "latency_max_s": float(np.max(seconds)),
        "misses": misses,
    }


def agent_suite(*, seed: int = 0, quick: bool = False) -> Section:
    """Intent accuracy and latency of the agent's request parsing."""
    from ..agent import EmbeddedLLM, embedded_available, parse_request

    sets = intent_requests()
    if quick:
        sets = {k: v[:6] for k, v in sets.items()}
    section = Section(
        "Agent: request understanding",
        f"{len(sets['main'])} hand-written requests (main set; the rules were developed on it), "
        f"{len(sets['held_out'])} written afterwards (held_out; its misses guided a second "
        f"round of parser changes) and {len(sets['held_out_2'])} written before that round "
        "(held_out_2, the honest measure), each with its expected "
        "requirement, tissue, file path and new type name. Fully right: all four fields equal "
        "the expected ones. Latency: parse plus answer writing for one turn (tools excluded).",
    )
    parsers: list[tuple[str, object]] = [("deterministic rules", None)]
    if embedded_available():
        llm = EmbeddedLLM()
        parsers.append((llm.name, llm))
    else:
        section.notes.append("The embedded LLM is not installed (scagent[llm]): not measured.")
    misses = []
    for name, llm in parsers:
        if llm is not None:  # the first call evaluates the shared prompt prefix: time it apart
            t0 = time.perf_counter()
            parse_request("Annotate warmup.h5ad", llm=llm)
            first = time.perf_counter() - t0
        for split, requests in sets.items():
            logger.info("Agent benchmark: %s on %s (%d requests).", name, split, len(requests))
            res = score_parser(requests, llm)
            misses += [{"parser": name, "set": split, **m} for m in res.pop("misses")]
            section.rows.append({"parser": name, "set": split, **res})
        if llm is not None:
            section.notes.append(
                f"{name}: {llm.threads} CPU thread(s) (SCAGENT_LLM_THREADS), model load and "
                f"first call {first:.1f} s (not in the latencies); OMP_NUM_THREADS="
                f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, on a machine shared with other "
                "jobs."
            )
    section.extra_tables.append(
        ("Requests not fully right", [{**m, "got": json.dumps(m["got"])} for m in misses])
    )
    return section
