"""The statistical decision: per-cell scores, candidate groups and each group's verdict."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._groups import MIN_CELLS, candidate_groups, group_means
from ._judge import JudgeParams, novelty_probability

__all__ = ["OPEN_SET_MAJORITY", "StatisticalDecision", "open_set_shares", "statistical_decision"]

#: Share of a cluster's cells the open-set models must reject to make it a candidate group
#: (a majority; not tuned) ...
OPEN_SET_MAJORITY = 0.5
#: ... and how many times the query's median cluster share it must reach: another study or
#: technology shifts every cell away from the reference, so its known cells are rejected
#: more everywhere (half of them and more in the benchmark's cross-study queries); a type
#: the reference lacks stands out from the rest of the same query.
OPEN_SET_RELATIVE = 2.0


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
        Per candidate group, P(novel): the judge's on the group's mean signals; for a
        cluster the open-set vote picked (most of its cells rejected, and at least
        :data:`OPEN_SET_RELATIVE` times the query's median cluster share), raised to that
        share.
    open_set_share
        Per candidate group, that share (NaN when the open-set models did not run).
    """

    score: np.ndarray
    groups: np.ndarray
    means: pd.DataFrame
    probability: pd.Series
    open_set_share: pd.Series

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
    clusters = np.asarray(clusters).astype(str)
    score = novelty_probability(frame, params)
    share = open_set_shares(frame, clusters)
    bar = max(OPEN_SET_MAJORITY, OPEN_SET_RELATIVE * float(share.median())) if len(share) else 1
    whole = {c for c, v in share.items() if v >= bar}
    groups = candidate_groups(clusters, score, whole=whole)
    means = group_means(frame, groups)
    prob = pd.Series(
        novelty_probability(means, params) if len(means) else np.zeros(0), index=means.index
    )
    of_group = pd.Series(clusters).groupby(groups).first()
    group_share = pd.Series(
        [share.get(of_group[g], np.nan) for g in means.index], index=means.index, dtype=float
    )
    # the vote raises P(novel) of the clusters it picked, never of others
    voted = pd.Series([of_group[g] in whole for g in means.index], index=means.index)
    prob = np.maximum(prob, group_share.where(voted, 0.0).fillna(0.0))
    return StatisticalDecision(score, groups, means, prob, group_share)


def open_set_shares(frame: pd.DataFrame, clusters: np.ndarray) -> pd.Series:
    """Per cluster, the share of its cells the open-set models reject (clusters of fewer
    than :data:`~scagent.novelty._groups.MIN_CELLS` cells, or without the signal, left
    out)."""
    if "open_set_rejected" not in frame:
        return pd.Series(dtype=float)
    rej = pd.Series(frame["open_set_rejected"].to_numpy(dtype=float))
    by = rej.groupby(np.asarray(clusters).astype(str))
    share = by.mean()
    return share[(by.count() >= MIN_CELLS) & share.notna()]
