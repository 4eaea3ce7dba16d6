"""The agent: natural-language requests planned into ``sa.tl`` tool runs (the paper's
planning module, sections 2.1 and 4.1.1).

* :class:`Agent`: ``Agent(llm=...).ask(text)``; multi-turn sessions in SQLite; consent via
  LangGraph's ``interrupt()`` before novel cells are learnt.
* :func:`understand`: refuse, parse (LLM checked against the schema and the text, else the
  deterministic :func:`parse_rules`), validate, plan.
* LLM backends (:func:`get_llm`): ``embedded`` (offline Qwen2.5-Coder-1.5B), ``openai`` (any
  OpenAI-compatible endpoint), ``rules`` (none); chosen by ``--llm``, ``$SCAGENT_LLM`` or
  ``scagent config set llm``.

Importing this package loads neither langgraph nor an LLM runtime.
"""

from __future__ import annotations

from ._agent import Agent, Reply, sessions_path
from ._answer import answer_text
from ._embedded import EmbeddedLLM, embedded_available
from ._guard import refusals
from ._llm import (
    BACKENDS,
    LLM,
    ChatBackend,
    LLMError,
    backend_choice,
    backend_name,
    get_llm,
    strip_thinking,
)
from ._parse import parse_request, understand
from ._rules import parse_rules
from ._schema import REQUEST_SCHEMA, REQUIREMENTS, TOOLS, Request
from ._tissues import canonical_tissue, find_tissues, known_tissues
from ._tools import RealTools, Tools, ToolUnavailable
from ._validate import allowed_dirs, plan, validate

__all__ = [
    "BACKENDS",
    "LLM",
    "REQUEST_SCHEMA",
    "REQUIREMENTS",
    "TOOLS",
    "Agent",
    "ChatBackend",
    "EmbeddedLLM",
    "LLMError",
    "RealTools",
    "Reply",
    "Request",
    "ToolUnavailable",
    "Tools",
    "allowed_dirs",
    "answer_text",
    "backend_choice",
    "backend_name",
    "build_graph",
    "canonical_tissue",
    "embedded_available",
    "find_tissues",
    "get_llm",
    "known_tissues",
    "parse_request",
    "parse_rules",
    "plan",
    "refusals",
    "sessions_path",
    "strip_thinking",
    "understand",
    "validate",
]


def __getattr__(name: str):
    if name == "build_graph":
        from ._graph import build_graph

        return build_graph
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
