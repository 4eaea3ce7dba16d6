"""Where the benchmark encoder lives: pretrained on unlabelled data only.

Every labelled cell the benchmarks score is a test cell, so the encoder they use must never
have seen one, not even without labels. It is pretrained with ``scagent pretrain`` on the
unlabelled lavage and lung files alone (see ``docs/model_card.md``) and ships beside the
benchmark code.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["bench_encoder_path"]


def bench_encoder_path() -> Path | None:
    """Folder of the benchmark encoder, or ``None`` when it is not installed."""
    with resources.as_file(resources.files("scagent.bench") / "data" / "encoder") as p:
        path = Path(p)
    return path if (path / "model.safetensors").is_file() else None
