"""Preprocessing: ``sa.pp``."""

from __future__ import annotations

from ._content import detect_content
from ._prepare import log1p_cp10k, prepare

__all__ = ["detect_content", "log1p_cp10k", "prepare"]
