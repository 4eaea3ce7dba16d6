"""What every annotation expert returns: probabilities over Cell Ontology terms."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ExpertCall"]


@dataclass
class ExpertCall:
    """One expert's opinion on a set of cells.

    Every expert (MoE-LoRA plugins, the reference classifier on the query's own genes, the
    marker-knowledge scorer) returns this shape, so the fusion code needs to know nothing
    about their insides: probabilities over Cell Ontology terms, one row per cell.

    Attributes
    ----------
    name
        ``"plugin"``, ``"reference"`` or ``"markers"``.
    probs
        (cells, terms) float32 probabilities; each row sums to 1. A row of NaN means the
        expert has no opinion on that cell (e.g. too few marker genes measured).
    terms
        Column identities: Cell Ontology ids (``"CL:0000236"``). Where a class has no
        ontology id, a readable name prefixed with ``"name:"``.
    names
        Readable name of each column.
    info
        What to record in ``.uns`` (genes used, cache hits, timings...), JSON-serialisable.
    cell_info
        Extra per-cell arrays an expert measures besides its probabilities (e.g. the
        reference expert's similarity of each cell to its nearest reference class).
    """

    name: str
    probs: np.ndarray
    terms: list[str]
    names: list[str]
    info: dict = field(default_factory=dict)
    cell_info: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.probs = np.asarray(self.probs, dtype=np.float32)
        if self.probs.ndim != 2 or self.probs.shape[1] != len(self.terms):
            msg = (
                f"Expert {self.name!r}: probs has shape {self.probs.shape}, expected "
                f"(cells, {len(self.terms)})."
            )
            raise ValueError(msg)
        if len(self.names) != len(self.terms):
            msg = f"Expert {self.name!r}: {len(self.names)} names for {len(self.terms)} terms."
            raise ValueError(msg)

    @property
    def n_cells(self) -> int:
        """Number of cells (rows)."""
        return self.probs.shape[0]

    def best(self) -> tuple[np.ndarray, np.ndarray]:
        """Per cell: the best term and its probability (``""`` and NaN where undecided)."""
        decided = ~np.isnan(self.probs).any(axis=1)
        idx = np.where(decided, np.nan_to_num(self.probs, nan=-1).argmax(axis=1), 0)
        term = np.where(decided, np.asarray(self.terms, dtype=object)[idx], "")
        prob = np.where(decided, self.probs[np.arange(self.n_cells), idx], np.nan)
        return term, prob.astype(np.float32)

    def take(self, rows) -> ExpertCall:
        """The same call restricted to some cells."""
        extra = {k: np.asarray(v)[rows] for k, v in self.cell_info.items()}
        return ExpertCall(
            self.name, self.probs[rows], self.terms, self.names, dict(self.info), extra
        )
