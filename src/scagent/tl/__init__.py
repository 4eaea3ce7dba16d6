"""Tools: ``sa.tl``. Every agent action is a plain function here first."""

from __future__ import annotations

from ._embed import embed

__all__ = ["embed"]
