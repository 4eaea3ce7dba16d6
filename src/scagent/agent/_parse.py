"""Understanding a request: refuse, parse (LLM, checked; else rules), validate, plan.

LLM output is untrusted. An answer is used only when it is one JSON object of
:data:`REQUEST_SCHEMA` whose fields are grounded in the request: the file path occurs in the
text, the tissue is named outside the file path, the cell type's name occurs in the text.
Otherwise the LLM is asked again with the error and the schema, and after the retries the
deterministic parser decides. Whether a tissue was named (not the LLM's choice of label)
decides between ``get_cell`` and ``get_cell_w_tissue``: when the LLM leaves the tissue out,
or gives one no tissue word names, while the text names a known tissue, the text's tissue is
taken; a request that names its tissue without asking for one is not ``get_tissue``. A new
type's name the LLM cut short of the text's "... cell" is completed from the text.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from ._guard import refusals
from ._llm import LLMError, strip_thinking
from ._prompts import parse_prompt
from ._rules import TISSUE_QUESTION, find_paths, parse_rules, without_paths
from ._schema import REQUEST_SCHEMA, Request, check_fields
from ._tissues import TISSUE_WORDS, canonical_tissue, find_tissues
from ._validate import plan, validate

__all__ = ["parse_llm_answer", "parse_request", "understand"]

logger = logging.getLogger("scagent")


def _json_object(text: str) -> object:
    text = strip_thinking(text)
    text = re.sub(r"```(?:json)?", "", text)
    start = text.find("{")
    if start < 0:
        msg = "no JSON object in the answer"
        raise ValueError(msg)
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as err:
        msg = f"invalid JSON ({err.msg})"
        raise ValueError(msg) from err
    return data


def _mentioned(phrase: str, text: str) -> bool:
    words = [re.escape(w) for w in re.split(r"[\s_\-]+", phrase.strip()) if w]
    if not words:
        return False
    pattern = r"(?<![A-Za-z0-9])" + r"[\s_\-]+".join(words) + r"(?![A-Za-z0-9])"
    return re.search(pattern, text, re.IGNORECASE) is not None


def parse_llm_answer(answer: str, text: str) -> Request:
    """The request in an LLM's ``answer`` to :func:`parse_prompt` for ``text``.

    Raises
    ------
    ValueError
        The answer is not schema-valid JSON, or a field is not grounded in ``text``.
    """
    data = check_fields(_json_object(answer))
    path = data["file_path"]
    if path is not None:
        path = path.strip().strip("\"'`")
        if not path or path not in text:
            msg = f"file_path {data['file_path']!r} does not occur in the request"
            raise ValueError(msg)
        tokens = find_paths(text)
        if tokens and path not in tokens:  # a part of a path ("b.h5ad" of "a/b.h5ad")
            msg = f"file_path {path!r} is not a whole path of the request ({tokens})"
            raise ValueError(msg)
    rest = without_paths(text, [path, *find_paths(text)] if path else find_paths(text))
    tissue = canonical_tissue(data["tissue"])
    if tissue is not None:
        phrases = (data["tissue"], tissue, *TISSUE_WORDS.get(tissue, ()))
        if not any(_mentioned(p, rest) for p in phrases):
            msg = f"tissue {data['tissue']!r} is not named in the request (outside the file path)"
            raise ValueError(msg)
    named = find_tissues(rest)
    if named and (tissue is None or tissue not in TISSUE_WORDS):
        tissue = named[0]  # the text names a tissue the LLM missed or mislabelled
    requirement = data["requirement"]
    if requirement == "get_tissue" and named and not TISSUE_QUESTION.search(rest):
        requirement = "get_cell"  # told the tissue, not asked for it
    if requirement in ("get_cell", "get_cell_w_tissue"):
        requirement = "get_cell_w_tissue" if tissue else "get_cell"  # decided here, not by the LLM
    elif requirement == "get_tissue":
        tissue = None
    cell_type = data["cell_type"] if requirement == "add_cell" else None
    if cell_type is not None:
        cell_type = cell_type.strip()
        if not cell_type or not _mentioned(cell_type, text):
            msg = f"cell_type {data['cell_type']!r} does not occur in the request"
            raise ValueError(msg)
        if not re.search(r"\bcells?$", cell_type, re.I) and (
            _mentioned(f"{cell_type} cell", text) or _mentioned(f"{cell_type} cells", text)
        ):
            cell_type = f"{cell_type} cell"  # "epsilon" of "... as epsilon cell"
    return Request(requirement, tissue, path, cell_type, parser="llm")


def parse_request(text: str, *, llm=None, retries: int = 2) -> Request:
    """Parse a request with the LLM (checked, retried), else with the rules.

    Parameters
    ----------
    text
        The user's request.
    llm
        An :class:`~scagent.agent.LLM`, or ``None`` for the rules alone.
    retries
        Extra LLM calls after an invalid answer.

    Returns
    -------
    The request, not yet validated; ``parser`` says who parsed it and ``llm_calls`` counts.
    """
    if llm is None:
        return parse_rules(text)
    prompt = parse_prompt(text)
    error, calls = "", 0
    for attempt in range(retries + 1):
        ask = (
            prompt
            if attempt == 0
            else (
                f"{prompt}\n\nYour previous answer was not valid ({error}). Reply with one JSON "
                f"object matching this schema and nothing else: {json.dumps(REQUEST_SCHEMA)}"
                "\nJSON:"
            )
        )
        calls += 1
        try:
            answer = llm.complete(ask, schema=REQUEST_SCHEMA)
        except LLMError as err:
            logger.warning("LLM parse failed: %s", err)
            request = parse_rules(text)
            request.parser, request.llm_calls = f"rules (LLM failed: {err})", calls
            return request
        try:
            request = parse_llm_answer(answer, text)
            request.llm_calls = calls
            return request
        except ValueError as err:
            error = str(err)
            logger.info("Invalid LLM parse (attempt %d): %s", attempt + 1, error)
    request = parse_rules(text)
    request.parser = f"rules (LLM answer invalid after {calls} calls: {error})"
    request.llm_calls = calls
    return request


def understand(
    text: str,
    *,
    llm=None,
    known: Sequence[str] | None = None,
    allowed: Sequence[Path] | None = None,
) -> tuple[Request, list[str]]:
    """Refuse, parse, validate and plan one request.

    Parameters
    ----------
    text
        The user's request.
    llm
        An :class:`~scagent.agent.LLM`, or ``None`` for the deterministic parser.
    known
        Known tissues (default: those with a plugin).
    allowed
        Readable directories (default: :func:`~scagent.agent.allowed_dirs`).

    Returns
    -------
    The validated request and the planned tools (empty when it cannot run).
    """
    if known is None:
        from ._tissues import known_tissues

        known = known_tissues()
    refused = refusals(text)
    # a refused text never reaches the LLM: the rules only show what it looked like
    request = parse_rules(text) if refused else parse_request(text, llm=llm)
    if refused:
        request.refused = True
        request.problems.extend(refused)
    validate(request, known=known, allowed=allowed)
    return request, plan(request)
