import pytest

from scagent.agent import LLMError, parse_request, strip_thinking
from scagent.agent._parse import parse_llm_answer

from .conftest import fake_llm

TEXT = "Here is blood data at data/pbmc.h5ad, what cell types are in it?"
GOOD = {
    "requirement": "get_cell_w_tissue",
    "tissue": "Blood",
    "file_path": "data/pbmc.h5ad",
    "cell_type": None,
}


def test_valid_answer_is_used_and_normalised():
    llm = fake_llm(GOOD)
    request = parse_request(TEXT, llm=llm)
    assert request.parser == "llm" and request.llm_calls == 1
    assert request.fields() == {**GOOD, "tissue": "blood"}


def test_fences_and_thinking_are_stripped():
    answer = "<think>the user says blood {not json}</think>\n```json\n" + (
        '{"requirement": "get_cell", "tissue": "blood", "file_path": "data/pbmc.h5ad", '
        '"cell_type": null}\n```'
    )
    request = parse_request(TEXT, llm=fake_llm(answer))
    assert request.parser == "llm"
    # a tissue was named, so the code (not the LLM's label) decides get_cell_w_tissue
    assert request.requirement == "get_cell_w_tissue"
    assert strip_thinking("<think>a</think> b <think>unterminated") == "b"


def test_invalid_then_valid_answer_retries():
    llm = fake_llm("Sure! The file is data/pbmc.h5ad.", GOOD)
    request = parse_request(TEXT, llm=llm)
    assert request.parser == "llm"
    assert request.llm_calls == 2


@pytest.mark.parametrize(
    "bad",
    [
        {**GOOD, "requirement": "run_shell"},
        {**GOOD, "command": "rm -rf /"},
        {**GOOD, "tissue": 3},
        {k: v for k, v in GOOD.items() if k != "file_path"},
        {**GOOD, "requirement": None},
        "{not json",
    ],
)
def test_off_schema_answers_fall_back_to_the_rules(bad):
    llm = fake_llm(bad, bad, bad)
    request = parse_request(TEXT, llm=llm)
    assert request.parser.startswith("rules (LLM answer invalid after 3 calls")
    assert request.llm_calls == 3
    assert request.fields() == {**GOOD, "tissue": "blood"}  # the rules' parse


def test_ungrounded_fields_are_rejected():
    with pytest.raises(ValueError, match="not named in the request"):
        # a tissue taken from the file name is not a named tissue
        parse_llm_answer(
            '{"requirement": "get_cell_w_tissue", "tissue": "lung", '
            '"file_path": "lung_1.h5ad", "cell_type": null}',
            "Annotate lung_1.h5ad",
        )
    with pytest.raises(ValueError, match="cell_type"):
        parse_llm_answer(
            '{"requirement": "add_cell", "tissue": "brain", "file_path": "a.h5ad", '
            '"cell_type": "neuron"}',
            "Add the brain cells in a.h5ad as a new type called tanycyte",
        )


def test_get_tissue_drops_a_tissue_and_cell_type_is_only_for_add_cell():
    request = parse_llm_answer(
        '{"requirement": "get_tissue", "tissue": "blood", "file_path": "data/pbmc.h5ad", '
        '"cell_type": "T cell"}',
        "Is data/pbmc.h5ad blood or which tissue is it?",
    )
    assert (request.tissue, request.cell_type) == (None, None)


def test_backend_failure_falls_back_with_the_reason():
    class Down:
        name = "down"

        def complete(self, prompt, *, schema=None):
            msg = "LLM backend 'down' failed: connection refused; choose another backend"
            raise LLMError(msg)

    request = parse_request(TEXT, llm=Down())
    assert request.parser.startswith("rules (LLM failed: LLM backend 'down' failed")
    assert request.requirement == "get_cell_w_tissue"


def test_part_of_a_path_is_rejected():
    with pytest.raises(ValueError, match="not a whole path"):
        parse_llm_answer(
            '{"requirement": "get_cell", "tissue": null, "file_path": "patient3.h5ad", '
            '"cell_type": null}',
            "Please annotate kidney/patient3.h5ad",
        )


def _answer(requirement, tissue, path, cell_type=None):
    import json

    return json.dumps(
        {"requirement": requirement, "tissue": tissue, "file_path": path, "cell_type": cell_type}
    )


def test_a_tissue_the_llm_missed_or_mislabelled_comes_from_the_text():
    text = "I sequenced PBMCs from a donor; the counts are in donor7.h5ad. Which cells?"
    request = parse_llm_answer(_answer("get_cell", None, "donor7.h5ad"), text)
    assert (request.requirement, request.tissue) == ("get_cell_w_tissue", "blood")
    text = "Please include microfold cell as a new cell type; the colon cells are in m.h5ad"
    request = parse_llm_answer(_answer("add_cell", "microfold", "m.h5ad", "microfold"), text)
    assert (request.tissue, request.cell_type) == ("colon", "microfold cell")
    # a tissue word the text does not hold is still left to validation (an unknown tissue)
    request = parse_llm_answer(_answer("get_cell", "gut", "g.h5ad"), "Annotate the gut in g.h5ad")
    assert request.tissue == "gut"


def test_a_request_that_names_its_tissue_is_not_asking_for_one():
    text = "What's in sample.h5ad? It's peripheral blood."
    request = parse_llm_answer(_answer("get_tissue", None, "sample.h5ad"), text)
    assert (request.requirement, request.tissue) == ("get_cell_w_tissue", "blood")
    text = "Is data/x.h5ad blood or lung? Which tissue is it?"
    request = parse_llm_answer(_answer("get_tissue", None, "data/x.h5ad"), text)
    assert (request.requirement, request.tissue) == ("get_tissue", None)


def test_a_new_type_name_cut_short_is_completed_from_the_text():
    text = "Register the pancreatic cells in data/eps.h5ad as epsilon cell"
    request = parse_llm_answer(_answer("add_cell", "pancreas", "data/eps.h5ad", "epsilon"), text)
    assert request.cell_type == "epsilon cell"
    text = "Learn the cells in t.h5ad as tuft cells of the colon"
    request = parse_llm_answer(_answer("add_cell", "colon", "t.h5ad", "tuft"), text)
    assert request.cell_type == "tuft cell"
