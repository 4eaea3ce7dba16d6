"""Candidate groups of suspected cells, and the evidence a judge reads about each.

Novelty is decided per group, not per cell: one judgement (and at most one LLM call) per
candidate group. A cell is suspected when the judge's model, applied to the cell's own
signals, gives it a novelty probability of 0.5 or more; the suspected cells of one voting
unit (a query cluster, split by called type: :func:`~scagent.novelty.voting_units`) form a
candidate group when they are at least :data:`MIN_CELLS` cells and :data:`MIN_SHARE` of the
unit. A unit the votes pick (most of its cells rejected by every known class's open-set
model, or most of its marker mass on types the reference lacks;
:mod:`~scagent.novelty._decide`) is a candidate group as a whole.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._signals import SIGNALS, CellSignals

__all__ = ["MIN_CELLS", "MIN_SHARE", "candidate_groups", "group_evidence", "group_means"]

#: Fewest suspected cells that make a candidate group.
MIN_CELLS = 5
#: Smallest share of its cluster a candidate group must be.
MIN_SHARE = 0.2


def candidate_groups(
    clusters: np.ndarray,
    score: np.ndarray,
    *,
    threshold: float = 0.5,
    whole: set[str] | frozenset[str] = frozenset(),
    min_share: float = MIN_SHARE,
) -> np.ndarray:
    """Candidate group of each cell (``""`` for cells in none); every cell of a cluster in
    ``whole`` is suspected, and elsewhere the suspected cells must be at least
    ``min_share`` of their cluster (and :data:`MIN_CELLS` cells)."""
    clusters = np.asarray(clusters).astype(str)
    out = np.full(len(clusters), "", dtype=object)
    suspected = np.asarray(score) >= threshold
    k = 0
    for c in pd.Series(clusters).value_counts().index:
        members = clusters == c
        s = members if c in whole else members & suspected
        share = 0.0 if c in whole else min_share
        if s.sum() >= MIN_CELLS and s.sum() >= share * members.sum():
            out[s] = f"g{k}"
            k += 1
    return out


def group_means(frame: pd.DataFrame, groups: np.ndarray) -> pd.DataFrame:
    """Mean signals of each candidate group (one row per group)."""
    keep = groups != ""
    cols = [c for c in SIGNALS if c in frame]
    return frame.loc[keep, cols].groupby(groups[keep]).mean()


def _mix(values: np.ndarray, dist: np.ndarray, names: dict, top: int = 5) -> dict:
    """The most frequent neighbour types, with counts and mean distance."""
    found = ~np.isnan(dist)
    if not found.any():
        return {}
    v, d = values[found], dist[found]
    out = {}
    for term, n in pd.Series(v).value_counts().head(top).items():
        out[names.get(term, term) or term] = {
            "ontology_id": term,
            "neighbours": int(n),
            "share": round(float(n / len(v)), 3),
            "mean_distance": round(float(d[v == term].mean()), 4),
        }
    return out


def _top_genes(X, genes, inside: np.ndarray, versus: np.ndarray, n: int = 8) -> dict:
    """Genes most higher in the group than in the comparison cells (log1p means)."""
    if not versus.any():
        return {}
    X = sp.csr_matrix(X)
    a = np.asarray(X[inside].mean(axis=0)).ravel()
    b = np.asarray(X[versus].mean(axis=0)).ravel()
    order = np.argsort(-(a - b))[:n]
    return {
        str(genes[j]): {
            "mean_in_group": round(float(a[j]), 3),
            "mean_in_known": round(float(b[j]), 3),
        }
        for j in order
        if a[j] > b[j]
    }


def group_evidence(
    group: str,
    groups: np.ndarray,
    signals: CellSignals,
    *,
    X,
    genes,
    names: dict[str, str],
    reference_probability: np.ndarray,
    statistical: float,
) -> dict:
    """What a judge (person, LLM or model) reads about one candidate group (JSON-able)."""
    rows = groups == group
    frame = signals.frame
    calls = frame["call"].to_numpy(dtype=object)
    top_call = pd.Series(calls[rows]).value_counts()
    nearest = str(top_call.index[0])
    versus = (calls == nearest) & ~rows
    if not versus.any():
        versus = ~rows
    means = frame.loc[rows, [c for c in SIGNALS if c in frame]].mean()
    ev = {
        "cells": int(rows.sum()),
        "cluster": str(pd.Series(frame["cluster"].to_numpy()[rows]).mode().iloc[0]),
        "tissue": str(pd.Series(frame["tissue"].to_numpy()[rows]).mode().iloc[0]),
        "annotated_as": {
            names.get(t, t): round(float(n / rows.sum()), 3) for t, n in top_call.head(3).items()
        },
        "nearest_known_type": names.get(nearest, nearest),
        "nearest_known_type_id": nearest,
        "mean_confidence": round(float(1 - means.get("uncertainty", np.nan)), 3),
        "experts_agree": round(float(1 - means.get("disagreement", np.nan)), 3),
        "reference_expert_probability": round(float(np.nanmean(reference_probability[rows])), 3),
        "signals": {k: round(float(v), 3) for k, v in means.items() if np.isfinite(v)},
        "statistical_probability_novel": round(float(statistical), 3),
        "neighbours": {},
        "distance_to_class_centroid": {},
        "markers_suggest": {},
        "top_genes_vs_nearest_type": _top_genes(X, genes, rows, versus),
    }
    for space, nb in signals.neighbours.items():
        ids = nb.fields["cell_type_ontology_term_id"][rows].ravel()
        ev["neighbours"][space] = _mix(ids, nb.distance[rows].ravel(), names)
        ratio = frame[f"distance_ratio_{space}"].to_numpy()[rows]
        ratio = ratio[np.isfinite(ratio)]
        if len(ratio):
            ev["distance_to_class_centroid"][space] = {
                "median_over_class_q95": round(float(np.median(ratio)), 3),
                "q90_over_class_q95": round(float(np.quantile(ratio, 0.9)), 3),
                "share_beyond_q95": round(float((ratio > 1).mean()), 3),
            }
    hints = signals.hints.loc[rows]
    if len(hints) and (hints["hint_probability"] > 0).any():
        best = hints.groupby("hint_id")["hint_probability"].mean().sort_values(ascending=False)
        term = str(best.index[0])
        name = str(hints.loc[hints["hint_id"] == term, "hint_name"].iloc[0])
        ev["markers_suggest"] = {
            "cell_type": name,
            "ontology_id": term,
            "mean_probability": round(float(best.iloc[0]), 3),
            "outside_reference_mass": round(float(means.get("outside_markers", 0.0)), 3),
        }
    return ev
