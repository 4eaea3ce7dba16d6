"""scagent: universal single-cell annotation.

Use it as ``import scagent as sa``.

Importing the package is cheap: the subpackages (``sa.pp``, ``sa.tl``, ``sa.models``...),
which pull in anndata, scanpy and torch, are imported on first use, so the command line
starts at once and ``import scagent`` alone loads neither torch nor scanpy.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import TYPE_CHECKING

from ._errors import InputDataError
from ._settings import settings

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import bench, datasets, io, knowledge, models, nn, pl, plugins, pp, tl  # noqa: F401
    from .agent import Agent
    from .io import read

__version__ = "0.1.0"

logging.getLogger("scagent").addHandler(logging.NullHandler())

#: Subpackages imported on first attribute access (``sa.tl`` imports ``scagent.tl``).
_SUBPACKAGES = (
    "bench",
    "datasets",
    "io",
    "knowledge",
    "models",
    "nn",
    "pl",
    "plugins",
    "pp",
    "tl",
)
#: Functions re-exported from a subpackage, imported on first use: name -> module.
_FUNCTIONS = {"read": ".io", "Agent": ".agent"}

__all__ = [
    "Agent",
    "InputDataError",
    "__version__",
    "datasets",
    "models",
    "nn",
    "pl",
    "plugins",
    "pp",
    "read",
    "settings",
    "tl",
]


def __getattr__(name: str):
    if name in _FUNCTIONS:
        value = getattr(importlib.import_module(_FUNCTIONS[name], __name__), name)
    elif name in _SUBPACKAGES or (
        not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None
    ):
        # any other subpackage too (e.g. one added later), so ``sa.<name>`` always works
        value = importlib.import_module(f".{name}", __name__)
    else:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBPACKAGES, *_FUNCTIONS})
