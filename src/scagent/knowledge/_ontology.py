"""The Cell Ontology (CL), as shipped by cellxgene-ontology-guide (release 2026-03-26)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import zstandard

__all__ = ["CellOntology", "cell_ontology"]


@dataclass(frozen=True)
class CellOntology:
    """Cell Ontology terms with labels, synonyms, descriptions and ancestors.

    Parameters
    ----------
    terms
        Term id (``"CL:0000236"``) to a record with ``label``, ``description``,
        ``synonyms``, ``ancestors`` (id to distance) and ``deprecated``.
    """

    terms: dict[str, dict]
    _by_name: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_name: dict[str, str] = {}
        for tid, rec in self.terms.items():
            if rec.get("deprecated"):
                continue
            for syn in rec.get("synonyms", []):
                by_name.setdefault(syn.lower(), tid)
        for tid, rec in self.terms.items():  # labels win over synonyms
            if not rec.get("deprecated"):
                by_name[rec["label"].lower()] = tid
        object.__setattr__(self, "_by_name", by_name)

    def __contains__(self, term_id: object) -> bool:
        return term_id in self.terms

    def __len__(self) -> int:
        return len(self.terms)

    def label(self, term_id: str) -> str:
        """The label of a term id."""
        try:
            return self.terms[term_id]["label"]
        except KeyError:
            msg = f"{term_id!r} is not a Cell Ontology id (expected e.g. 'CL:0000236')."
            raise KeyError(msg) from None

    def find(self, name: str) -> str | None:
        """The id whose label or synonym is ``name`` (case-insensitive), or ``None``."""
        return self._by_name.get(name.strip().lower())

    def ancestors(self, term_id: str) -> dict[str, int]:
        """Ancestor ids of a term with their distance."""
        return dict(self.terms[term_id].get("ancestors", {}))

    def is_a(self, term_id: str, ancestor_id: str) -> bool:
        """Whether ``term_id`` is ``ancestor_id`` or descends from it."""
        return term_id == ancestor_id or ancestor_id in self.terms[term_id].get("ancestors", {})


@cache
def cell_ontology() -> CellOntology:
    """Load (once) the bundled Cell Ontology."""
    path = resources.files("scagent.knowledge") / "data" / "cell_ontology.json.zst"
    with path.open("rb") as fh:
        raw = zstandard.ZstdDecompressor().stream_reader(fh).read()
    return CellOntology(json.loads(raw))
