"""The most specific term the fused evidence supports: the leaf call, or an ancestor.

When the experts cannot tell two sibling types apart (naive or memory CD4 T cell), the
honest answer is their common ancestor ("CD4-positive, alpha-beta T cell"). For each cell
this walks up the Cell Ontology from the called class and returns the nearest term (the
call itself included) whose summed fused probability, over the classes it covers, reaches
``level``.
"""

from __future__ import annotations

import numpy as np

from ..knowledge import cell_ontology

__all__ = ["GENERAL_TERMS", "consensus_terms"]

#: Terms too general to be an answer ("cell", "native cell", "animal cell"...).
GENERAL_TERMS = frozenset(
    {"CL:0000000", "CL:0000003", "CL:0000255", "CL:0000548", "CL:0000988", "CL:0002371"}
)
#: Furthest ancestor considered.
MAX_STEPS = 4


def consensus_terms(
    P: np.ndarray, call: np.ndarray, classes: list[str], *, level: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the consensus term and its probability.

    Parameters
    ----------
    P
        (cells, classes) fused probabilities.
    call
        Index of each cell's called class.
    classes
        Cell Ontology ids of the columns.
    level
        Probability the consensus term must reach.

    Returns
    -------
    Term ids (``""`` where even the broadest allowed ancestor stays below ``level``) and
    their summed probabilities.
    """
    onto = cell_ontology()
    n = len(call)
    covers: dict[str, np.ndarray] = {}

    def cover(term: str) -> np.ndarray:
        if term not in covers:
            covers[term] = np.array(
                [c == term or (c in onto and onto.is_a(c, term)) for c in classes], dtype=bool
            )
        return covers[term]

    terms = np.full(n, "", dtype=object)
    mass = np.zeros(n, dtype=np.float32)
    for j in np.unique(call):
        rows = np.flatnonzero(call == j)
        c = classes[int(j)]
        anc = onto.ancestors(c) if c in onto else {}
        up = sorted((d, a) for a, d in anc.items() if d <= MAX_STEPS and a not in GENERAL_TERMS)
        todo = np.ones(len(rows), dtype=bool)
        for term in [c] + [a for _, a in up]:
            m = P[rows][:, cover(term)].sum(axis=1)
            hit = todo & (m >= level)
            terms[rows[hit]] = term
            mass[rows[hit]] = m[hit]
            todo &= ~hit
            if not todo.any():
                break
    return terms, mass
