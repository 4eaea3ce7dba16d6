"""The statistical decision: per-cell scores, candidate groups and each group's verdict."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._groups import candidate_groups, group_means
from ._judge import JudgeParams, novelty_probability

__all__ = ["StatisticalDecision", "statistical_decision"]


@dataclass
class StatisticalDecision:
    """What the statistical judge makes of a query.

    Attributes
    ----------
    score
        Per cell, P(novel) from the cell's own signals (picks the suspected cells).
    groups
        Per cell, its candidate group (``""``: in none).
    means
        One row per candidate group: the group's mean signals.
    probability
        Per candidate group, P(novel) from its mean signals.
    """

    score: np.ndarray
    groups: np.ndarray
    means: pd.DataFrame
    probability: pd.Series

    def novel_cells(self) -> np.ndarray:
        """Cells of the groups the judge calls novel (P >= 0.5)."""
        novel = self.probability[self.probability >= 0.5].index
        return np.isin(self.groups, list(novel))


def statistical_decision(
    frame: pd.DataFrame, clusters: np.ndarray, params: JudgeParams | None = None
) -> StatisticalDecision:
    """Score cells, group the suspected ones by cluster and judge each group on its means.

    Parameters
    ----------
    frame
        Per-cell signals (:func:`~scagent.novelty.cell_signals`).
    clusters
        Per-cell query cluster.
    params
        The judge (default: the shipped one).
    """
    params = params or JudgeParams.shipped()
    score = novelty_probability(frame, params)
    groups = candidate_groups(np.asarray(clusters), score)
    means = group_means(frame, groups)
    prob = pd.Series(
        novelty_probability(means, params) if len(means) else np.zeros(0), index=means.index
    )
    return StatisticalDecision(score, groups, means, prob)
