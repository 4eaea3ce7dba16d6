"""The ``scagent`` command line (one module per command group)."""

from __future__ import annotations

from . import _agent, _commands, _config, _learn, _memory, _plugins  # noqa: F401  (register)
from ._app import app

__all__ = ["app"]
