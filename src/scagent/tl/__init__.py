"""Tools: ``sa.tl``. Every agent action is a plain function here first."""

from __future__ import annotations

from ._add_cell_type import add_cell_type
from ._annotate import annotate
from ._annotate_file import annotate_file
from ._detect_novel import detect_novel
from ._embed import embed

__all__ = ["add_cell_type", "annotate", "annotate_file", "detect_novel", "embed"]
