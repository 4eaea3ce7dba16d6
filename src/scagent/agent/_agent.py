"""``sa.Agent``: the agent in Python (``scagent ask`` and ``scagent chat`` use it too)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._llm import get_llm
from ._parse import understand
from ._validate import allowed_dirs

__all__ = ["Agent", "Reply", "sessions_path"]


def sessions_path() -> Path:
    """The SQLite file holding every conversation's checkpoints."""
    from .._settings import settings

    return settings.data_dir / "agent" / "sessions.sqlite"


@dataclass
class Reply:
    """One turn's outcome.

    Attributes
    ----------
    answer
        The text for the user (empty while a question is pending).
    question
        The agent's question waiting for an answer (consent, a name), else ``None``.
    request
        The parsed, validated request.
    tools
        The planned tools.
    results
        Each tool's result.
    durations
        Seconds per tool.
    """

    answer: str
    question: str | None = None
    request: dict = field(default_factory=dict)
    tools: list[str] = field(default_factory=list)
    results: dict = field(default_factory=dict)
    durations: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.question or self.answer


class Agent:
    """The annotation agent: requests in natural language, tools run, answers from results.

    Parameters
    ----------
    llm
        Backend name (``"auto"``, ``"embedded"``, ``"openai"``, ``"rules"``), an LLM with
        ``complete(prompt, *, schema)``, or a langchain chat model; default ``$SCAGENT_LLM``.
    tools
        The tools (default: :class:`~scagent.agent.RealTools`, the ``sa.tl`` functions).
    session
        Conversation id; the same id continues a conversation, across processes too.
    allow
        Directories to allow besides the current one and the scagent data directory.
    known
        Known tissues (default: those with a plugin).
    history
        The :class:`~scagent.memory.History` logging every turn (default: the user's;
        ``False``: none).
    checkpoints
        SQLite file of the conversations (default :func:`sessions_path`).

    Examples
    --------
    >>> agent = sa.Agent(llm="rules")  # doctest: +SKIP
    >>> print(agent.ask("Here is blood data at pbmc.h5ad, what cell types are in it?"))
    """

    def __init__(
        self,
        llm=None,
        *,
        tools=None,
        session: str | None = None,
        allow: Sequence[str | os.PathLike] = (),
        known: Sequence[str] | None = None,
        history=None,
        checkpoints: str | os.PathLike | None = None,
    ) -> None:
        self.llm = get_llm(llm)
        if known is None:
            from ._tissues import known_tissues

            known = known_tissues()
        self.known = list(known)
        self.allowed = allowed_dirs(allow)
        if history is None:
            from ..memory import History

            history = History()
        self.history = history or None
        if tools is None:
            from ._tools import RealTools

            tools = RealTools(history=self.history)
        self.tools = tools
        self.session = session or uuid.uuid4().hex[:12]
        path = Path(checkpoints) if checkpoints is not None else sessions_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(str(path), check_same_thread=False)
        self._graph = None

    @property
    def graph(self):
        """The compiled LangGraph graph (built on first use)."""
        if self._graph is None:
            from langgraph.checkpoint.sqlite import SqliteSaver

            from ._graph import build_graph

            self._graph = build_graph(
                llm=self.llm,
                tools=self.tools,
                known=self.known,
                allowed=self.allowed,
                history=self.history,
                checkpointer=SqliteSaver(self._con),
            )
        return self._graph

    def plan(self, text: str) -> dict:
        """Parse, validate and plan ``text`` without running anything.

        Returns
        -------
        ``requirement``, ``tissue``, ``file_path``, ``cell_type``, ``tools``, ``problems``,
        ``parser``, ``llm_calls``.
        """
        request, tools = understand(text, llm=self.llm, known=self.known, allowed=self.allowed)
        return {
            **request.fields(),
            "tools": tools,
            "problems": request.problems,
            "parser": request.parser,
            "llm_calls": request.llm_calls,
        }

    @property
    def _config(self) -> dict:
        return {"configurable": {"thread_id": self.session}}

    def pending(self) -> str | None:
        """The question this session waits on (after a restart too), else ``None``."""
        snapshot = self.graph.get_state(self._config)
        for task in snapshot.tasks:
            for intr in task.interrupts:
                return intr.value.get("question")
        return None

    def _reply(self) -> Reply:
        snapshot = self.graph.get_state(self._config)
        values = snapshot.values
        question = self.pending()
        return Reply(
            answer="" if question else values.get("answer", ""),
            question=question,
            request=values.get("request", {}),
            tools=values.get("tools", []),
            results=values.get("results", {}),
            durations=values.get("durations", {}),
        )

    def ask(self, text: str, *, out: str | os.PathLike | None = None, progress=None) -> Reply:
        """Send one message: a new request, or the answer to a pending question.

        Parameters
        ----------
        text
            The user's message.
        out
            Where to write the annotated ``.h5ad`` (default: beside the input).
        progress
            Called with each step's name as it finishes (``"parse"``, ``"run_tools"``...).
        """
        from langgraph.types import Command

        if self.pending() is not None:
            message = Command(resume=text)
        else:
            message = {"text": text, "out": str(out) if out is not None else None}
        for chunk in self.graph.stream(message, self._config, stream_mode="updates"):
            if progress is not None:
                for node in chunk:
                    if not node.startswith("__"):
                        progress(node)
        return self._reply()

    def close(self) -> None:
        """Close the conversation store."""
        self._con.close()
