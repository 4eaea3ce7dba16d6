"""The agent's LangGraph ``StateGraph``: parse, validate, plan, run tools, consent, learn,
answer.

Built by :func:`build_graph` (never at import). The LLM only parses; the tools are
injected; every decision about what runs is made here in code from validated fields.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import TypedDict

from ._answer import answer_text, consent_question
from ._guard import refusals
from ._parse import parse_request
from ._rules import find_cell_type
from ._schema import Request
from ._validate import _NAME, plan, validate

__all__ = ["AgentState", "build_graph", "default_out"]

logger = logging.getLogger("scagent")

_YES = re.compile(
    r"^\s*(yes|y|yeah|yep|sure|ok|okay|agree|i agree|please do|go ahead|do it)\b", re.I
)


class AgentState(TypedDict, total=False):
    """One conversation's state (kept by the checkpointer between turns)."""

    text: str
    out: str | None
    request: dict
    tools: list[str]
    results: dict
    durations: dict
    consent: dict
    answer: str
    last_file: str | None
    last_tissue: str | None
    turn_started: float


def default_out(file_path: str) -> str:
    """Where an annotated file goes when no output is given: beside the input."""
    p = Path(file_path).expanduser()
    stem = p.name.split(".")[0] if p.suffix else p.name
    return str(p.with_name(f"{stem}_scagent.h5ad"))


def _consent_reply(value) -> tuple[bool, str | None]:
    if isinstance(value, dict):
        agree, name = bool(value.get("agree")), value.get("cell_type")
        return agree, (str(name).strip() if name else None)
    text = str(value or "")
    if refusals(text) or not _YES.match(text):
        return False, None
    return True, find_cell_type(text, [])


def build_graph(*, llm, tools, known, allowed, history=None, checkpointer=None):
    """Build and compile the agent's graph.

    Parameters
    ----------
    llm
        An :class:`~scagent.agent.LLM` for parsing, or ``None`` (the rules).
    tools
        A :class:`~scagent.agent.Tools` object.
    known
        Tissues with a plugin.
    allowed
        Directories files may be read from.
    history
        A :class:`~scagent.memory.History` logging every turn (``None``: no log).
    checkpointer
        A LangGraph checkpointer (needed for consent and multi-turn sessions).

    Returns
    -------
    The compiled graph; invoke it with ``{"text": ...}`` and a ``thread_id``.
    """
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    def parse(state: AgentState) -> dict:
        text = state["text"]
        refused = refusals(text)
        from ._rules import parse_rules

        request = parse_rules(text) if refused else parse_request(text, llm=llm)
        if refused:
            request.refused = True
            request.problems.extend(refused)
        elif request.file_path is None and state.get("last_file"):
            request.file_path = state["last_file"]  # "annotate it again": the previous file
            if request.requirement == "get_cell" and state.get("last_tissue"):
                request.tissue = state["last_tissue"]  # ... and the tissue the user named
                request.requirement = "get_cell_w_tissue"
                request.parser += " (file and tissue from the previous turn)"
            else:
                request.parser += " (file from the previous turn)"
        return {
            "request": request.to_dict(),
            "tools": [],
            "results": {},
            "durations": {},
            "consent": {},
            "answer": "",
            "turn_started": time.time(),
        }

    def check(state: AgentState) -> dict:
        request = validate(Request(**state["request"]), known=known, allowed=allowed)
        return {"request": request.to_dict()}

    def make_plan(state: AgentState) -> dict:
        request = Request(**state["request"])
        update: dict = {"tools": plan(request)}
        if request.file_path and not request.problems:
            update["last_file"] = request.file_path
            update["last_tissue"] = request.tissue
        return update

    def _run(name: str, results: dict, durations: dict, fn, **inputs):
        t0 = time.perf_counter()
        try:
            results[name] = fn(**inputs)
        except Exception as err:  # a failed tool ends the turn with its message
            results["error"] = f"{name}: {type(err).__name__}: {err}"
            logger.warning("Tool %s failed: %s", name, err)
        durations[name] = round(time.perf_counter() - t0, 3)
        return name in results

    def run_tools(state: AgentState) -> dict:
        request = state["request"]
        results, durations = {}, {}
        path = request["file_path"]
        out = state.get("out") or default_out(path or "input")
        for tool in state["tools"]:
            if tool == "memory_search":
                ok = _run(tool, results, durations, tools.memory_search, path=path)
            elif tool == "annotate":
                tissue = request["tissue"] if request["requirement"] != "get_tissue" else None
                ok = _run(
                    tool, results, durations, tools.annotate, path=path, tissue=tissue, out=out
                )
            elif tool == "detect_novel":
                ok = _run(tool, results, durations, tools.detect_novel, out=out)
            elif tool == "add_cell_type":
                ok = _run(
                    tool,
                    results,
                    durations,
                    tools.add_cell_type,
                    path=path,
                    cell_type=request["cell_type"],
                    tissue=request["tissue"],
                    novel_only=False,
                )
            else:  # pragma: no cover - plan() only lists known tools
                msg = f"unknown tool {tool!r}"
                raise ValueError(msg)
            if not ok and tool != "memory_search":
                break
        return {"results": results, "durations": durations}

    def after_tools(state: AgentState) -> str:
        novel = state["results"].get("detect_novel") or {}
        return "consent" if novel.get("n_novel_cells", 0) > 0 else "answer"

    def consent(state: AgentState) -> dict:
        novel = state["results"]["detect_novel"]
        question = f"{answer_text(state)}\n\n{consent_question(novel)}"  # what was found, then ask
        reply = interrupt({"question": question, "groups": novel["groups"]})
        agree, name = _consent_reply(reply)
        if agree and not name:
            reply = interrupt({"question": "What should the new cell type be called?"})
            name = _consent_reply(reply)[1] if isinstance(reply, dict) else str(reply).strip()
            name = name if name and not refusals(name) else None
        if name and not _NAME.match(name):
            name = None
        return {"consent": {"asked": True, "agree": bool(agree and name), "cell_type": name}}

    def after_consent(state: AgentState) -> str:
        return "learn" if state["consent"].get("agree") else "answer"

    def learn(state: AgentState) -> dict:
        results, durations = dict(state["results"]), dict(state["durations"])
        _run(
            "add_cell_type",
            results,
            durations,
            tools.add_cell_type,
            path=state["results"]["detect_novel"]["out"],
            cell_type=state["consent"]["cell_type"],
            tissue=state["request"]["tissue"] or _main_tissue(state["results"]),
            novel_only=True,
        )
        return {"results": results, "durations": durations}

    def answer(state: AgentState) -> dict:
        text = answer_text(state)
        if history is not None:
            request = state["request"]
            results = state.get("results") or {}
            history.log_query(
                state["text"],
                intent={
                    k: request.get(k)
                    for k in (
                        "requirement",
                        "tissue",
                        "file_path",
                        "cell_type",
                        "parser",
                        "llm_calls",
                        "problems",
                    )
                },
                tools=[
                    t
                    for t in ("memory_search", "annotate", "detect_novel", "add_cell_type")
                    if t in (state.get("durations") or {})
                ],
                durations=state.get("durations") or {},
                outcome=text[:2000],
                status="refused"
                if request.get("refused")
                else ("error" if results.get("error") or request.get("problems") else "ok"),
                seconds=round(time.time() - state.get("turn_started", time.time()), 3),
            )
        return {"answer": text}

    graph = StateGraph(AgentState)
    graph.add_node("parse", parse)
    graph.add_node("validate", check)
    graph.add_node("plan", make_plan)
    graph.add_node("run_tools", run_tools)
    graph.add_node("consent", consent)
    graph.add_node("learn", learn)
    graph.add_node("answer", answer)
    graph.add_edge(START, "parse")
    graph.add_edge("parse", "validate")
    graph.add_edge("validate", "plan")
    graph.add_edge("plan", "run_tools")
    graph.add_conditional_edges("run_tools", after_tools, ["consent", "answer"])
    graph.add_conditional_edges("consent", after_consent, ["learn", "answer"])
    graph.add_edge("learn", "answer")
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=checkpointer)


def _main_tissue(results: dict) -> str | None:
    tissues = (results.get("annotate") or {}).get("tissues") or {}
    return max(tissues, key=tissues.get) if tissues else None
