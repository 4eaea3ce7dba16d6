"""Preprocessing: ``sa.pp``."""

from __future__ import annotations

from ._content import detect_content, linear_values
from ._prepare import log1p_cp10k, prepare

__all__ = ["detect_content", "linear_values", "log1p_cp10k", "prepare"]
