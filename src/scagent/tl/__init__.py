"""Tools: ``sa.tl`` (embedding, annotation, novelty; filled by later releases)."""

from __future__ import annotations

__all__: list[str] = []
