"""Plotting: ``sa.pl``.

Pictures of an annotation, in scanpy's style: ``adata`` first, options by keyword,
``show``/``save``/``ax``, the Axes back with ``show=False``. matplotlib is imported only
when a function draws.
"""

from __future__ import annotations

from ._confidence import confidence
from ._confusion import confusion
from ._embedding import calls
from ._markers import markers

__all__ = ["calls", "confidence", "confusion", "markers"]
