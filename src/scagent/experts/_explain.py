"""Why a cluster got its call: the experts' votes and the marker genes behind it."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..knowledge import cell_ontology, marker_table

__all__ = ["cluster_report", "markers_behind"]


@cache
def _positive_markers() -> dict[str, list[str]]:
    table = marker_table()
    pos = table[(table["weight"] > 0) & (table["kind"] == "cell_type")]
    return pos.groupby("term")["gene"].apply(list).to_dict()


def _term_markers(term: str) -> list[str]:
    """Positive marker genes of a term, or of its nearest ancestor that has some."""
    by_term = _positive_markers()
    if term in by_term:
        return by_term[term]
    onto = cell_ontology()
    if term not in onto:
        return []
    for anc, _ in sorted(onto.ancestors(term).items(), key=lambda kv: kv[1]):
        if anc in by_term:
            return by_term[anc]
    return []


def markers_behind(X, genes, rows: np.ndarray, term: str, *, top: int = 5) -> dict[str, dict]:
    """The call's marker genes that the cluster expresses most above the other cells.

    Returns up to ``top`` genes, best first, each with ``mean_in_cluster``,
    ``mean_elsewhere`` (log1p(CP10k)) and ``fraction_in_cluster``; only genes higher in the
    cluster than elsewhere.
    """
    markers = [g for g in dict.fromkeys(_term_markers(term))]
    idx = pd.Index(np.asarray(genes, dtype=str)).get_indexer(markers)
    markers = [m for m, i in zip(markers, idx) if i >= 0]
    idx = idx[idx >= 0]
    if len(idx) == 0:
        return {}
    X = sp.csr_matrix(X)[:, idx]
    inside = np.zeros(X.shape[0], dtype=bool)
    inside[rows] = True
    mean_in = np.asarray(X[inside].mean(axis=0)).ravel()
    mean_out = (
        np.asarray(X[~inside].mean(axis=0)).ravel() if (~inside).any() else np.zeros(len(idx))
    )
    frac = np.asarray((X[inside] > 0).mean(axis=0)).ravel()
    order = np.argsort(-(mean_in - mean_out))
    out = {}
    for j in order[:top]:
        if mean_in[j] <= mean_out[j]:
            break
        out[markers[j]] = {
            "mean_in_cluster": round(float(mean_in[j]), 3),
            "mean_elsewhere": round(float(mean_out[j]), 3),
            "fraction_in_cluster": round(float(frac[j]), 3),
        }
    return out


def cluster_report(
    X,
    genes,
    clusters: np.ndarray,
    terms: np.ndarray,
    names: np.ndarray,
    confidence: np.ndarray,
    tissue: np.ndarray,
    expert_calls: dict[str, np.ndarray],
) -> dict[str, dict]:
    """One record per query cluster (largest first): its call, confidence, tissue, the
    experts' own calls and the marker genes behind the call (JSON-serialisable)."""
    clusters = np.asarray(clusters).astype(str)
    records = {}
    for c in pd.Series(clusters).value_counts().index:
        rows = np.flatnonzero(clusters == c)
        top = pd.Series(np.asarray(names)[rows]).value_counts()
        name = str(top.index[0])
        term = str(np.asarray(terms)[rows][np.asarray(names)[rows] == name][0])
        experts = {}
        for e, calls in expert_calls.items():
            votes = pd.Series(np.asarray(calls)[rows]).value_counts()
            experts[e] = {
                "call": str(votes.index[0]),
                "share": round(float(votes.iloc[0] / len(rows)), 3),
            }
        records[str(c)] = {
            "cells": len(rows),
            "tissue": str(pd.Series(np.asarray(tissue)[rows]).mode().iloc[0]),
            "call": name,
            "ontology_id": term,
            "share": round(float(top.iloc[0] / len(rows)), 3),
            "mean_confidence": round(float(np.mean(np.asarray(confidence)[rows])), 3),
            "experts": experts,
            "markers": markers_behind(X, genes, rows, term),
        }
    return records
