"""The statistical decision: per-cell scores, candidate groups and each group's verdict."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._groups import MIN_CELLS, MIN_SHARE, candidate_groups, group_means
from ._judge import JudgeParams, novelty_probability

__all__ = [
    "MARKER_MAJORITY",
    "OPEN_SET_MAJORITY",
    "StatisticalDecision",
    "confirmed_units",
    "marker_shares",
    "open_set_background",
    "open_set_shares",
    "query_shift",
    "statistical_decision",
    "voting_units",
]

#: Share of a cluster's cells the open-set models must reject to make it a candidate group
#: (a majority; not tuned) ...
OPEN_SET_MAJORITY = 0.5
#: ... and how many times the query's median cluster share it must reach: another study or
#: technology shifts every cell away from the reference, so its known cells are rejected
#: more everywhere (half of them and more in the benchmark's cross-study queries); a type
#: the reference lacks stands out from the rest of the same query.
OPEN_SET_RELATIVE = 2.0
#: Whether the judge's suspected cells must also stand out from the rest of the query: a
#: unit's suspected share must reach :data:`OPEN_SET_RELATIVE` times the query's median unit
#: share (the judge's distance signals rise for every cell of another study, as open-set
#: rejection does).
JUDGE_RELATIVE = True
#: Whether the open-set vote's relative bar may be set aside where the query's known cells
#: show it is not needed (:func:`open_set_background`). The bar guards against another study
#: raising rejection everywhere, and takes the median unit as the measure of it, assuming
#: that unit is a known type; in a query made mostly of a new type the median unit is new,
#: and the bar hides the new type behind itself. The units the markers confirm as their call
#: are known by knowledge: when the query is not shifted (its confirmed cells sit less than
#: :data:`OPEN_SET_RELATIVE` times as far from their class centroids as the reference's own
#: cells do, :func:`query_shift`) and the open-set models reject those confirmed units at
#: under :data:`OPEN_SET_MAJORITY` / :data:`OPEN_SET_RELATIVE` (or have no model for them),
#: nothing raises rejection and the majority alone decides. In the benchmark, held-out
#: cells of the reference's own studies sit 0.8-1.5 times as far, another study's 5-13 times.
SHIFT_GATE = True
#: Whether a group the open-set models accept (most of its cells accepted by a known class's
#: own model) needs evidence from its markers (most of their mass on types the reference
#: lacks) before the judge may call it novel. Distance in the embedding and neighbours of
#: other types alone do not suffice: another study's cells of a known type, measured on a
#: few thousand genes, sit far from the reference too (pbmc68k_reduced's T cells: 3-5x their
#: class's spread, accepted by their class's model). Groups the open-set models cannot judge
#: (classes too small) are left to the judge.
EXPRESSION_EVIDENCE = True
#: Mean marker mass on cell types the reference lacks (the ``outside_markers`` signal) that
#: makes a cluster a candidate group as a whole: most of what its markers say points to a
#: type the reference does not hold (a majority; not tuned). This evidence comes from
#: knowledge, not from the reference's own expression, so another study's known cells do
#: not raise it the way they raise open-set rejection: no relative bar.
MARKER_MAJORITY = 0.5


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
        share; for a cluster the marker vote picked (mean marker mass on types the
        reference lacks of at least :data:`MARKER_MAJORITY`), raised to that mass.
    open_set_share
        Per candidate group, that share (NaN when the open-set models did not run).
    marker_share
        Per candidate group, its cluster's mean marker mass on types the reference lacks.
    shift
        The query's shift from the reference (:func:`query_shift`; NaN: not measurable).
    background
        The open-set rejection the vote's relative bar was set against
        (:func:`open_set_background`).
    """

    score: np.ndarray
    groups: np.ndarray
    means: pd.DataFrame
    probability: pd.Series
    open_set_share: pd.Series
    marker_share: pd.Series
    shift: float = float("nan")
    background: float = float("nan")

    def novel_cells(self) -> np.ndarray:
        """Cells of the groups the judge calls novel (P >= 0.5)."""
        novel = self.probability[self.probability >= 0.5].index
        return np.isin(self.groups, list(novel))


def voting_units(clusters: np.ndarray, calls: np.ndarray | None) -> np.ndarray:
    """Each query cluster split by called type: the cells called as one type make their own
    unit when they are at least :data:`~scagent.novelty._groups.MIN_CELLS` of the cluster;
    the cluster's other cells join its largest unit (or, when no called type reaches
    that many, the cluster stays one unit, ``"<cluster>|*"``).

    A cluster of a small query can hold a few cells of a distinct known type among many
    cells of a new one (e.g. seven microglia among malignant cells); judged apart, those
    known cells are not swept along with the cluster. Cells whose call is too rare to be
    judged on its own share their cluster's expression, so they go with its main unit
    rather than into a remainder too small to be judged at all.
    """
    clusters = np.asarray(clusters).astype(str)
    if calls is None:
        return clusters
    calls = np.asarray(calls).astype(str)
    cells = pd.DataFrame({"cluster": clusters, "unit": pd.Series(clusters) + "|" + calls})
    cells["n"] = cells.groupby("unit")["unit"].transform("size")
    large = cells["n"] >= MIN_CELLS
    # each cluster's largest unit (ties: the first in sorted order, for determinism)
    main = (
        cells[large]
        .drop_duplicates("unit")
        .sort_values(["n", "unit"], ascending=[False, True])
        .drop_duplicates("cluster")
        .set_index("cluster")["unit"]
    )
    fallback = cells["cluster"].map(main).fillna(cells["cluster"] + "|*")
    return np.where(large, cells["unit"], fallback).astype(str)


def statistical_decision(
    frame: pd.DataFrame,
    clusters: np.ndarray,
    params: JudgeParams | None = None,
    *,
    split_by_call: bool = True,
) -> StatisticalDecision:
    """Score cells, group the suspected ones by voting unit and judge each group on its
    means.

    Parameters
    ----------
    frame
        Per-cell signals (:func:`~scagent.novelty.cell_signals`), with the cells' calls in
        a ``call`` column when ``split_by_call``.
    clusters
        Per-cell query cluster.
    params
        The judge (default: the shipped one).
    split_by_call
        Split each cluster by called type (:func:`voting_units`); otherwise the units are
        the clusters.
    """
    params = params or JudgeParams.shipped()
    calls = frame["call"].to_numpy() if split_by_call and "call" in frame else None
    clusters = voting_units(clusters, calls)
    score = novelty_probability(frame, params)
    share = open_set_shares(frame, clusters)
    confirmed = confirmed_units(frame, clusters)
    shift = query_shift(frame, clusters, confirmed)
    background = open_set_background(share, confirmed, shift)
    bar = max(OPEN_SET_MAJORITY, OPEN_SET_RELATIVE * background) if len(share) else 1
    whole = {c for c, v in share.items() if v >= bar}
    markers = marker_shares(frame, clusters)
    by_markers = {c for c, v in markers.items() if v >= MARKER_MAJORITY}
    min_share = MIN_SHARE
    if JUDGE_RELATIVE:
        suspected = pd.Series(score >= 0.5).groupby(clusters)
        sizes = suspected.count()
        shares = suspected.mean()[sizes >= MIN_CELLS]
        if len(shares):
            min_share = max(MIN_SHARE, OPEN_SET_RELATIVE * float(shares.median()))
    groups = candidate_groups(
        clusters, score, whole=whole | by_markers, min_share=min(min_share, 1.0)
    )
    means = group_means(frame, groups)
    prob = pd.Series(
        novelty_probability(means, params) if len(means) else np.zeros(0), index=means.index
    )
    of_group = pd.Series(clusters).groupby(groups).first()
    group_share = pd.Series(
        [share.get(of_group[g], np.nan) for g in means.index], index=means.index, dtype=float
    )
    group_markers = pd.Series(
        [markers.get(of_group[g], np.nan) for g in means.index], index=means.index, dtype=float
    )
    if EXPRESSION_EVIDENCE:
        # where the open-set models cannot judge (a class too small), the judge decides
        unjudged = (
            means["open_set_rejected"].isna()
            if "open_set_rejected" in means
            else pd.Series(True, index=means.index)
        )
        evidence = unjudged.copy()
        for col, bar_e in (
            ("open_set_rejected", OPEN_SET_MAJORITY),
            ("outside_markers", MARKER_MAJORITY),
        ):
            if col in means:
                evidence |= means[col].fillna(0.0) >= bar_e
        prob = prob.where(evidence, np.minimum(prob, 0.49))
    # the votes raise P(novel) of the clusters they picked, never of others
    voted = pd.Series([of_group[g] in whole for g in means.index], index=means.index)
    prob = np.maximum(prob, group_share.where(voted, 0.0).fillna(0.0))
    marked = pd.Series([of_group[g] in by_markers for g in means.index], index=means.index)
    prob = np.maximum(prob, group_markers.where(marked, 0.0).fillna(0.0))
    return StatisticalDecision(
        score, groups, means, prob, group_share, group_markers, shift=shift, background=background
    )


def _cluster_means(frame: pd.DataFrame, column: str, clusters: np.ndarray) -> pd.Series:
    """Per cluster, the mean of a per-cell signal over the cells that have it (clusters of
    fewer than :data:`~scagent.novelty._groups.MIN_CELLS` such cells, or without the
    signal, left out)."""
    if column not in frame:
        return pd.Series(dtype=float)
    values = pd.Series(frame[column].to_numpy(dtype=float))
    by = values.groupby(np.asarray(clusters).astype(str))
    mean = by.mean()
    return mean[(by.count() >= MIN_CELLS) & mean.notna()]


def open_set_shares(frame: pd.DataFrame, clusters: np.ndarray) -> pd.Series:
    """Per cluster, the share of its cells the open-set models reject (clusters of fewer
    than :data:`~scagent.novelty._groups.MIN_CELLS` cells, or without the signal, left
    out)."""
    return _cluster_means(frame, "open_set_rejected", clusters)


def marker_shares(frame: pd.DataFrame, clusters: np.ndarray) -> pd.Series:
    """Per cluster, its cells' mean marker mass on cell types the reference lacks (clusters
    of fewer than :data:`~scagent.novelty._groups.MIN_CELLS` cells, or without the signal,
    left out)."""
    return _cluster_means(frame, "outside_markers", clusters)


def confirmed_units(frame: pd.DataFrame, units: np.ndarray) -> list[str]:
    """Units (of at least :data:`~scagent.novelty._groups.MIN_CELLS` cells) the markers
    confirm as their call: mean ``call_marker_deficit`` at most :data:`MARKER_MAJORITY`
    (their calls get at least half the marker support the called classes' own reference
    cells get). They are known by knowledge, not by the reference's expression."""
    deficit = _cluster_means(frame, "call_marker_deficit", units)
    return sorted(deficit[deficit <= MARKER_MAJORITY].index)


def query_shift(frame: pd.DataFrame, units: np.ndarray, confirmed: list[str]) -> float:
    """How far the query sits from the reference, measured on the confirmed units' cells.

    The median, over those cells, of the distance to the called class's centroid relative
    to the class's own cells' median (``distance_ratio_pretrained /
    class_median_ratio_pretrained``): about 1 for cells of the reference's own studies,
    several times that for another study or technology.

    Returns
    -------
    The shift, or NaN where no unit is confirmed or the pretrained space is missing.
    """
    needed = ("distance_ratio_pretrained", "class_median_ratio_pretrained")
    if any(c not in frame for c in needed) or not confirmed:
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = frame[needed[0]].to_numpy(dtype=float) / frame[needed[1]].to_numpy(dtype=float)
    ratio = ratio[np.isin(np.asarray(units).astype(str), confirmed) & np.isfinite(ratio)]
    return float(np.median(ratio)) if len(ratio) else float("nan")


def open_set_background(share: pd.Series, confirmed: list[str], shift: float) -> float:
    """The open-set rejection a query's known cells would show anyway.

    The median confirmed unit's share when the query is not shifted and that share is
    under :data:`OPEN_SET_MAJORITY` / :data:`OPEN_SET_RELATIVE` (0 when no confirmed unit
    has an open-set verdict), so the majority alone decides (:data:`SHIFT_GATE`); else the
    median unit's share.

    Parameters
    ----------
    share
        Per unit, the share of its cells the open-set models reject (:func:`open_set_shares`).
    confirmed
        The units the markers confirm (:func:`confirmed_units`).
    shift
        The query's shift (:func:`query_shift`; NaN: unknown, never taken as unshifted).
    """
    if not len(share):
        return float("nan")
    if SHIFT_GATE and shift < OPEN_SET_RELATIVE:
        known = share[share.index.isin(confirmed)]
        background = float(known.median()) if len(known) else 0.0
        if OPEN_SET_RELATIVE * background < OPEN_SET_MAJORITY:
            return background
    return float(share.median())
