"""Tools: ``sa.tl``. Every agent action is a plain function here first."""

from __future__ import annotations

from ._annotate import annotate
from ._annotate_file import annotate_file
from ._embed import embed

__all__ = ["annotate", "annotate_file", "embed"]
