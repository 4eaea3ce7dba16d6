"""Global settings: ``sa.settings``.

Nothing here touches the disk at import time; the data directory is only
created when :meth:`ScagentSettings.ensure_data_dir` is called by code that
writes models, plugins or memory.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

__all__ = ["ScagentSettings", "settings"]

_ENV_HOME = "SCAGENT_HOME"
_DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class ScagentSettings:
    """Run-time settings shared by every scagent function.

    Attributes
    ----------
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"mps"``.
    batch_size
        Cells per batch for model inference.
    seed
        Seed for every random step (splits, sampling, model initialisation).
    progress
        Show progress bars.
    min_recognised_genes
        Fewest recognised genes an input may have before it is refused.
    """

    device: str = "auto"
    batch_size: int = 256
    seed: int = 0
    progress: bool = True
    min_recognised_genes: int = 200
    _data_dir: Path | None = field(default=None, repr=False)

    def __setattr__(self, name: str, value: object) -> None:
        if name == "device" and value not in _DEVICES:
            msg = f"settings.device must be one of {_DEVICES}, got {value!r}."
            raise ValueError(msg)
        if name in ("batch_size", "min_recognised_genes") and (
            not isinstance(value, int) or value < 1
        ):
            msg = f"settings.{name} must be a positive integer, got {value!r}."
            raise ValueError(msg)
        super().__setattr__(name, value)

    @property
    def data_dir(self) -> Path:
        """Where models, plugins and memory live.

        ``$SCAGENT_HOME`` when set, else the platform's user data directory.
        Assigning a path overrides both.
        """
        if self._data_dir is not None:
            return self._data_dir
        env = os.environ.get(_ENV_HOME)
        if env:
            return Path(env).expanduser()
        return Path(platformdirs.user_data_dir("scagent", appauthor=False))

    @data_dir.setter
    def data_dir(self, path: str | os.PathLike | None) -> None:
        self._data_dir = None if path is None else Path(path).expanduser()

    def ensure_data_dir(self) -> Path:
        """Create the data directory if needed and return it."""
        path = self.data_dir
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolved_device(self) -> str:
        """The torch device string that ``device`` resolves to on this machine."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def set_verbosity(self, level: int | str) -> None:
        """Set the level of the ``scagent`` logger (e.g. ``"INFO"``)."""
        logging.getLogger("scagent").setLevel(level)


settings = ScagentSettings()
