"""Bundled data sets and reference builders: ``sa.datasets``."""

from __future__ import annotations

from ._bundled import novel_type_example, reference_atlas
from ._soma import from_soma

__all__ = ["from_soma", "novel_type_example", "reference_atlas"]
