"""Bundled biological knowledge: gene tables and the Cell Ontology."""

from __future__ import annotations

from ._genes import GeneTable, gene_table
from ._markers import marker_parents, marker_sets, marker_table
from ._ontology import CellOntology, cell_ontology

__all__ = [
    "CellOntology",
    "GeneTable",
    "cell_ontology",
    "gene_table",
    "marker_parents",
    "marker_sets",
    "marker_table",
]
