"""The embedded model for real (marked ``llm``; part of the default run, skipped when
scagent[llm] is not installed). The model is loaded once per session; a handful of calls."""

import time

import pytest

from scagent.agent import parse_request

from .conftest import KNOWN

pytestmark = pytest.mark.llm


def test_embedded_model_parses_requests(embedded_llm):
    calls = embedded_llm.calls
    request = parse_request(
        "Here is blood data at data/pbmc.h5ad, what cell types are in it?", llm=embedded_llm
    )
    assert request.parser == "llm", request.parser
    assert request.fields() == {
        "requirement": "get_cell_w_tissue",
        "tissue": "blood",
        "file_path": "data/pbmc.h5ad",
        "cell_type": None,
    }
    request = parse_request("Which tissue does data/x.h5ad come from?", llm=embedded_llm)
    assert request.requirement == "get_tissue" and request.file_path == "data/x.h5ad"
    assert embedded_llm.calls - calls >= 2


def test_conversation_with_the_embedded_model(embedded_llm, make_agent, tools):
    """The README's conversation, parsed by the model: annotate, consent, learn, again."""
    agent = make_agent(llm=embedded_llm)
    t0 = time.perf_counter()
    reply = agent.ask("Here is brain data at data/pbmc.h5ad, what cell types are in it?")
    assert reply.request["parser"] == "llm", reply.request
    assert reply.request["tissue"] == "brain" and "brain" in KNOWN
    assert reply.question and "12 cells of no known type" in reply.question
    reply = agent.ask("yes, learn them as malignant cell")
    assert tools.calls[-1] == (
        "add_cell_type",
        {
            "path": "data/pbmc_scagent.h5ad",
            "cell_type": "malignant cell",
            "tissue": "brain",
            "novel_only": True,
        },
    )
    reply = agent.ask("Annotate it again")
    assert reply.request["file_path"] == "data/pbmc.h5ad"
    assert reply.request["tissue"] == "brain"
    assert [name for name, _ in tools.calls].count("annotate") == 2
    assert time.perf_counter() - t0 < 300
