"""Memory: the reference datasets scagent annotates against (and, later, vector memory)."""

from __future__ import annotations

from ._reference import ReferenceData, reference_data

__all__ = ["ReferenceData", "reference_data"]
