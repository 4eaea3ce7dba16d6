"""The deterministic request parser: the fallback when the LLM fails, and the baseline.

Regular expressions find the file path (a token with a data-file extension, or a path
starting with ``/``, ``./``, ``../`` or ``~/``), the tissue (:func:`find_tissues` outside the
path), the requirement (adding a type, asking for the tissue, else asking for cell types)
and, for ``add_cell``, the new type's name (quoted, or after "called", "named", "as").
"""

from __future__ import annotations

import re

from ._schema import Request
from ._tissues import find_tissues

__all__ = ["TISSUE_QUESTION", "find_cell_type", "find_paths", "parse_rules", "without_paths"]

_EXT = re.compile(r"\.(h5ad|h5|hdf5|loom|csv|tsv|txt|mtx|zarr|rds|h5seurat)(\.gz)?$", re.IGNORECASE)
_QUOTED = re.compile(r"[\"'`“”‘’]([^\"'`“”‘’\n]{1,300})[\"'`“”‘’]")
_STRIP = " \t,;:!?()[]<>{}\"'`“”‘’"
_ADD = re.compile(
    r"\b(add|adding|learn|learning|teach|register|incorporate|extend|include|store|save|"
    r"remember|record)\b",
    re.IGNORECASE,
)
_TYPE_WORD = re.compile(r"\b(type|types|class|label|population|called|named|as)\b", re.I)
TISSUE_QUESTION = re.compile(
    r"^\W*(tissue|organ)\W*$|^\W*(tissue|organ)\s*\?|"  # a bare "Tissue?"
    r"\b(which|what)\s+(?:\w+\s+){0,2}(tissue|organ)s?\b|\btissue\s+of\s+origin\b|"
    r"\b(where|which\s+organ)\b.{0,40}\b(come|comes|came|from|originate|derive)|"
    r"\b(identify|determine|predict|guess|infer|detect|tell me|find|classify)\s+(?:me\s+)?"
    r"(?:the\s+|its\s+|their\s+)?(tissue|organ)\b|\borigin(al)?\s+tissue\b|"
    r"\b(know|find\s+out|learn)\s+(?:the\s+|which\s+|what\s+)(tissue|organ)\b",
    re.IGNORECASE,
)
_CELL_Q = re.compile(r"\bcell[\s-]?types?\b|\bannotat|\bwhat\s+cells\b|\bwhich\s+cells\b", re.I)
_NAME = r"(?P<name>[A-Za-z0-9][A-Za-z0-9+\-/ ]{0,60}?)"
_NAME_END = r"(?=\s+(?:from|in|using|with|at|to|into|for|of\s+the)\b|[,;:!?()]|\.(?:\s|$)|$)"
#: Where a new type's name follows, most explicit first.
_NAME_AFTER = [
    re.compile(
        r"\b(?:called|named|labell?ed(?:\s+as)?|(?:name|call|label)\s+(?:it|them)(?:\s+as)?)"
        r"\s+(?:an?\s+|the\s+)?" + _NAME + _NAME_END,
        re.IGNORECASE,
    ),
    re.compile(r"\bnew\s+(?:cell\s+)?type\s*[:\-,]\s*" + _NAME + _NAME_END, re.IGNORECASE),
    re.compile(
        r"\bas\s+(?:an?\s+|the\s+)?(?:new\s+)?(?:cell\s+)?(?:type\s+)?" + _NAME + _NAME_END,
        re.IGNORECASE,
    ),
]
_NOT_NAMES = {"new", "a new type", "new type", "a new cell type", "new cell type", "well", "such"}


def _clean(token: str) -> str:
    token = token.strip(_STRIP)
    while token.endswith(".") and not token.endswith(".."):
        token = token[:-1]
    return token


def _is_path(token: str) -> bool:
    if not token or "://" in token:
        return False
    if _EXT.search(token):
        return True
    if token.startswith(("/", "./", "../", "~/")) and len(token) > 1:
        return True
    if "/" in token:  # data/pbmc, but not and/or, CD4/CD8
        return all(len(p) > 4 for p in token.split("/")[:2] if p) or token.count("/") >= 2
    return False


def find_paths(text: str) -> list[str]:
    """File paths in ``text``, in order (quoted paths may contain spaces)."""
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for m in _QUOTED.finditer(text):
        token = _clean(m.group(1))
        if _is_path(token):
            found.append((m.start(), token))
            taken.append(m.span())
    for m in re.finditer(r"\S+", text):
        if any(a <= m.start() < b for a, b in taken):
            continue
        token = _clean(m.group())
        if _is_path(token):
            found.append((m.start(), token))
    return [t for _, t in sorted(found)]


def without_paths(text: str, paths: list[str]) -> str:
    """``text`` with the paths blanked out (so file names do not count as tissues)."""
    for p in paths:
        text = text.replace(p, " ")
    return text


def find_cell_type(text: str, paths: list[str]) -> str | None:
    """The new type's name in an ``add_cell`` request, or ``None``."""
    for m in _QUOTED.finditer(text):
        token = m.group(1).strip()
        if token and not _is_path(_clean(token)) and token not in paths:
            return token
    rest = without_paths(text, paths)
    for pattern in _NAME_AFTER:
        for m in pattern.finditer(rest):
            name = re.sub(r"\s+", " ", m.group("name")).strip(" -/")
            lowered = name.lower()
            if lowered in _NOT_NAMES or lowered.startswith(("a new", "new ", "well")):
                continue
            name = re.sub(r"^(?:a|an|the)\s+", "", name, flags=re.I)
            if name and name.lower() not in ("it", "them", "these", "this", "those", "type"):
                return name
    return None


def parse_rules(text: str) -> Request:
    """Parse a request without an LLM.

    Parameters
    ----------
    text
        The user's request.

    Returns
    -------
    The request (``parser="rules"``), not yet validated.
    """
    paths = find_paths(text)
    rest = without_paths(text, paths)
    tissues = find_tissues(rest)
    tissue = tissues[0] if tissues else None
    if _ADD.search(rest) and _TYPE_WORD.search(rest):
        requirement = "add_cell"
    elif TISSUE_QUESTION.search(rest) and not (
        _CELL_Q.search(rest) and not re.search(r"\b(tissue|organ)\b", rest[:60], re.I)
    ):
        requirement, tissue = "get_tissue", None
    else:
        requirement = "get_cell_w_tissue" if tissue else "get_cell"
    cell_type = find_cell_type(text, paths) if requirement == "add_cell" else None
    return Request(
        requirement=requirement,
        tissue=tissue,
        file_path=paths[0] if paths else None,
        cell_type=cell_type,
        parser="rules",
    )
