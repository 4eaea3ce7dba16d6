"""Reading data and recognising genes."""

from __future__ import annotations

from ._genes import detect_gene_ids, standardize_genes
from ._read import read
from ._species import select_species
from ._validate import validate_adata

__all__ = ["detect_gene_ids", "read", "select_species", "standardize_genes", "validate_adata"]
