"""scagent: universal single-cell annotation.

Use it as ``import scagent as sa``.
"""

from __future__ import annotations

import logging

from . import datasets, models, nn, pl, plugins, pp, tl
from ._errors import InputDataError
from ._settings import settings
from .io import read

__version__ = "0.1.0"

logging.getLogger("scagent").addHandler(logging.NullHandler())

__all__ = [
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
