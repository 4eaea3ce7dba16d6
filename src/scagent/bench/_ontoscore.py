"""Scoring calls against labels through the Cell Ontology.

Studies name the same cells at different depths ("CD4 Memory T" in one, "T cell" in another),
and a method can only name the classes its reference holds. Scores here compare Cell Ontology
ids, with the rule a careful reader would apply:

* a call is right when it is the true term, or a more specific term below it;
* when the true term is not among the classes the method could name, a call of its nearest
  ancestor among those classes (at most :data:`MAX_ANCESTOR_DISTANCE` steps up) is right too;
* when no class of the reference is that close, the cell cannot be named by any method with
  that reference (e.g. oligodendrocytes against a reference without brain); it is left out
  of the scores and counted in ``coverage``.

A coarse level maps every term to a broad lineage (:data:`LINEAGES`), as a person reading a
UMAP would.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..knowledge import cell_ontology

__all__ = ["LINEAGES", "MAX_ANCESTOR_DISTANCE", "call_is_right", "lineage", "scorable"]

#: How far up the ontology the nearest reference class of an unseen true term may be.
MAX_ANCESTOR_DISTANCE = 3

#: Broad lineages, most specific first: (name, Cell Ontology ids whose descendants belong).
LINEAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("T cell", ("CL:0000084",)),
    ("NK cell", ("CL:0000623",)),
    ("B cell", ("CL:0000236", "CL:0000786", "CL:0000980")),
    ("dendritic cell", ("CL:0000451",)),
    ("monocyte", ("CL:0000576",)),
    ("macrophage", ("CL:0000235",)),
    ("mast cell", ("CL:0000097",)),
    ("granulocyte", ("CL:0000094",)),
    ("platelet/megakaryocyte", ("CL:0000233", "CL:0000556")),
    ("erythroid", ("CL:0000232", "CL:0000764")),
    ("pancreatic endocrine", ("CL:0008024",)),
    ("pancreatic ductal", ("CL:0002079",)),
    ("pancreatic acinar", ("CL:0002064",)),
    ("endothelial", ("CL:0000115",)),
    ("stromal", ("CL:0002410", "CL:0000057", "CL:0000669", "CL:0000192")),
    ("Schwann/glia", ("CL:0002573", "CL:0000128", "CL:0000127", "CL:0002453")),
    ("neuron", ("CL:0000540",)),
    ("epithelial", ("CL:0000066",)),
)


def lineage(term: str) -> str:
    """The broad lineage of a Cell Ontology id (``"other"`` when none applies)."""
    onto = cell_ontology()
    if term not in onto:
        return "other"
    anc = set(onto.ancestors(term)) | {term}
    for name, ids in LINEAGES:
        if anc.intersection(ids):
            return name
    return "other"


def _nearest_in(term: str, classes: set[str]) -> set[str]:
    """Classes that are the nearest ancestors of ``term`` (within the allowed distance)."""
    onto = cell_ontology()
    if term not in onto:
        return set()
    anc = {a: d for a, d in onto.ancestors(term).items() if a in classes}
    anc = {a: d for a, d in anc.items() if d <= MAX_ANCESTOR_DISTANCE}
    if not anc:
        return set()
    best = min(anc.values())
    return {a for a, d in anc.items() if d == best}


def scorable(truth: Iterable[str], classes: Iterable[str]) -> np.ndarray:
    """Whether each true term can be named with the reference's ``classes`` (see module)."""
    onto = cell_ontology()
    classes = set(classes)
    out = []
    for t in truth:
        ok = t in classes or bool(_nearest_in(t, classes))
        if not ok and t in onto:  # a more specific class below the truth also names it
            ok = any(c in onto and onto.is_a(c, t) for c in classes)
        out.append(ok)
    return np.asarray(out, dtype=bool)


def call_is_right(truth: Iterable[str], pred: Iterable[str], classes: Iterable[str]) -> np.ndarray:
    """Per cell, whether the call ``pred`` names the true term (module rules)."""
    onto = cell_ontology()
    classes = set(classes)
    cache: dict[tuple[str, str], bool] = {}
    out = []
    for t, p in zip(truth, pred):
        key = (t, p)
        if key not in cache:
            right = t == p or (p in onto and t in onto and onto.is_a(p, t))
            if not right and t not in classes:
                right = p in _nearest_in(t, classes)
            cache[key] = right
        out.append(cache[key])
    return np.asarray(out, dtype=bool)
