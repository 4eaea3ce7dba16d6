"""The parsed request: its four fields, their JSON schema and their validation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

__all__ = ["REQUEST_SCHEMA", "REQUIREMENTS", "TOOLS", "Request", "check_fields"]

#: What a request can ask for (the paper's Fig. 5).
REQUIREMENTS = ("get_cell", "get_cell_w_tissue", "get_tissue", "add_cell")
#: The tools the agent may run; nothing else is ever run.
TOOLS = ("annotate", "detect_novel", "consent", "add_cell_type", "memory_search")

REQUEST_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "requirement": {"type": "string", "enum": list(REQUIREMENTS)},
        "tissue": {"type": ["string", "null"]},
        "file_path": {"type": ["string", "null"]},
        "cell_type": {"type": ["string", "null"]},
    },
    "required": ["requirement", "tissue", "file_path", "cell_type"],
    "additionalProperties": False,
}


@dataclass
class Request:
    """A user's request, parsed and (after :func:`~scagent.agent.validate`) checked.

    Attributes
    ----------
    requirement
        One of :data:`REQUIREMENTS`.
    tissue
        Canonical tissue name, or ``None``.
    file_path
        The data file as written in the request, or ``None``.
    cell_type
        The new type's name (``add_cell`` only), or ``None``.
    parser
        Who parsed it: ``"llm"`` or ``"rules"`` (with the reason when the LLM was not used).
    llm_calls
        LLM calls made while parsing.
    problems
        Why the request cannot run as asked (validation and refusals); empty when it can.
    refused
        The request was refused (injection, other tools, forbidden path).
    """

    requirement: str
    tissue: str | None = None
    file_path: str | None = None
    cell_type: str | None = None
    parser: str = "rules"
    llm_calls: int = 0
    problems: list[str] = field(default_factory=list)
    refused: bool = False

    def fields(self) -> dict:
        """The four parsed fields."""
        return {k: getattr(self, k) for k in ("requirement", "tissue", "file_path", "cell_type")}

    def to_dict(self) -> dict:
        return asdict(self)


def check_fields(data: object) -> dict:
    """``data`` checked against :data:`REQUEST_SCHEMA` (types, enum, no other keys).

    Raises
    ------
    ValueError
        Naming the first violation.
    """
    if not isinstance(data, dict):
        msg = "the answer must be a JSON object"
        raise ValueError(msg)
    props = REQUEST_SCHEMA["properties"]
    extra = sorted(set(data) - set(props))
    if extra:
        msg = f"unexpected keys {extra}"
        raise ValueError(msg)
    missing = [k for k in REQUEST_SCHEMA["required"] if k not in data]
    if missing:
        msg = f"missing keys {missing}"
        raise ValueError(msg)
    if data["requirement"] not in REQUIREMENTS:
        msg = f"'requirement' must be one of {list(REQUIREMENTS)}, got {data['requirement']!r}"
        raise ValueError(msg)
    for key in ("tissue", "file_path", "cell_type"):
        value = data[key]
        if value is not None and not isinstance(value, str):
            msg = f"{key!r} must be a string or null, got {json.dumps(value)}"
            raise ValueError(msg)
        if isinstance(value, str) and len(value) > 500:
            msg = f"{key!r} is too long"
            raise ValueError(msg)
    return dict(data)
