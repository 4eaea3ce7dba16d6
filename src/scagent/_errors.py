"""Errors scagent raises for bad input, each saying what is wrong and how to fix it."""

from __future__ import annotations

__all__ = ["InputDataError"]


class InputDataError(ValueError):
    """The data a user gave cannot be used as it is.

    The message says what was found and what to do about it.
    """
