"""Tissue as an expert decides it: for the dataset or its clusters, never per lone cell.

A tissue matters to annotation because it sets which reference classes a cell may get
(pancreatic macrophages are not blood monocytes). The decision reads three kinds of
evidence per cluster of the query:

* reference fit: the share of the reference expert's probability (trained on every tissue)
  that falls on each tissue's classes; a beta-cell cluster puts it on pancreas, a monocyte
  cluster on blood, a T-cell cluster on every tissue with T cells;
* marker signatures of each tissue's parenchyma (the marker table's tissue signatures);
* votes of the tissue-assignment plugin, recorded as the paper's tissue plugin (in the
  bundled atlas every tissue is one study, so it learns technology as much as tissue and
  only breaks ties).

Rules, in order: a tissue the user names is used for every cell. When the marker signatures
point clearly to a tissue the reference lacks (a brain sample against a reference with no
brain), the dataset is annotated across tissues: every cell against every reference class
(a T cell from any tissue is a T cell). Otherwise the tissue that fits the most cells wins
when it fits at least :data:`DATASET_FIT` of them; clusters it fits poorly (below
:data:`CLUSTER_FIT`) are annotated across tissues. When no tissue fits the dataset, each
cluster takes the tissue that fits it best, or is annotated across tissues.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._base import ExpertCall

__all__ = ["ACROSS", "CLUSTER_FIT", "DATASET_FIT", "TissueDecision", "decide_tissue"]

#: Label of cells annotated against every reference class.
ACROSS = "across tissues"
#: Share of the dataset's reference-expert probability a tissue must hold to be chosen.
DATASET_FIT = 0.6
#: Share a cluster must give the chosen tissue to stay in it.
CLUSTER_FIT = 0.3
#: Marker-signature lead (softmax share) that makes a tissue the reference lacks decisive.
MARKER_LEAD = 0.5


@dataclass
class TissueDecision:
    """Which tissue each cell is annotated in, and why.

    Attributes
    ----------
    per_cell
        Tissue of each cell, or :data:`ACROSS`.
    tissue
        The dataset's tissue, or ``None`` when cells differ or none fits.
    how
        ``"given"``, ``"dataset"``, ``"clusters"`` or ``"across tissues"``.
    evidence
        JSON-serialisable: per-cluster fit of each tissue, marker-signature and plugin
        shares, the rule applied and its reason.
    """

    per_cell: np.ndarray
    tissue: str | None
    how: str
    evidence: dict = field(default_factory=dict)


def class_tissues(obs: pd.DataFrame, label_key: str = "cell_type_ontology_term_id") -> dict:
    """Reference classes of each tissue: ``{tissue: set of class ids}``."""
    pairs = obs[["tissue", label_key]].astype(str).drop_duplicates()
    return {t: set(sub[label_key]) for t, sub in pairs.groupby("tissue")}


def _shares(frame: pd.DataFrame | None, scale: float) -> pd.DataFrame | None:
    if frame is None or frame.empty:
        return None
    z = frame.to_numpy(dtype=float) * scale
    z -= np.nanmax(z, axis=1, keepdims=True)
    p = np.exp(np.nan_to_num(z, nan=-np.inf))
    p /= p.sum(axis=1, keepdims=True)
    return pd.DataFrame(p, index=frame.index, columns=frame.columns)


def _round(frame: pd.DataFrame | None) -> dict | None:
    if frame is None:
        return None
    return {
        str(c): {str(t): round(float(v), 3) for t, v in row.items()} for c, row in frame.iterrows()
    }


def decide_tissue(
    reference_call: ExpertCall,
    tissues: dict[str, set[str]],
    clusters: np.ndarray,
    *,
    given: str | None = None,
    markers: pd.DataFrame | None = None,
    plugin_votes: pd.DataFrame | None = None,
    marker_scale: float = 20.0,
) -> TissueDecision:
    """Decide the tissue of the dataset or of each cluster (rules in the module docstring).

    Parameters
    ----------
    reference_call
        The reference expert trained on every tissue.
    tissues
        Reference classes of each tissue (:func:`class_tissues`).
    clusters
        Cluster of each cell.
    given
        The user's tissue (must be a key of ``tissues``).
    markers
        (clusters, tissues) marker-signature scores (``tissue_evidence``).
    plugin_votes
        (clusters, tissues) mean tissue-plugin probabilities.
    marker_scale
        Softmax scale turning signature scores into shares.

    Returns
    -------
    The decision.
    """
    clusters = np.asarray(clusters).astype(str)
    n = len(clusters)
    if given is not None:
        return TissueDecision(np.full(n, given, dtype=object), given, "given", {"given": given})
    names = sorted(tissues)
    terms = np.asarray(reference_call.terms)
    probs = np.nan_to_num(reference_call.probs, nan=0.0)
    per_tissue = np.column_stack([probs[:, np.isin(terms, list(tissues[t]))].sum(1) for t in names])
    fit = pd.DataFrame(per_tissue, columns=names).groupby(clusters).mean()
    sizes = pd.Series(clusters).value_counts().reindex(fit.index).to_numpy()
    dataset_fit = pd.Series((fit.to_numpy() * sizes[:, None]).sum(0) / n, index=names)
    marker_share = _shares(markers, marker_scale)
    evidence = {
        "reference_fit": _round(fit),
        "dataset_fit": {t: round(float(v), 3) for t, v in dataset_fit.items()},
        "marker_share": _round(marker_share),
        "plugin_votes": _round(plugin_votes),
        "cluster_sizes": {str(c): int(s) for c, s in zip(fit.index, sizes)},
        "thresholds": {"dataset_fit": DATASET_FIT, "cluster_fit": CLUSTER_FIT},
    }
    if marker_share is not None:
        weights = pd.Series(clusters).value_counts().reindex(marker_share.index).fillna(0)
        overall = (marker_share.mul(weights, axis=0)).sum() / max(weights.sum(), 1)
        top = str(overall.idxmax())
        evidence["marker_dataset_share"] = {t: round(float(v), 3) for t, v in overall.items()}
        if top not in tissues and overall[top] >= MARKER_LEAD:
            evidence["reason"] = (
                f"marker signatures point to {top} ({overall[top]:.0%}), which the reference "
                "lacks: every cell is annotated against every reference class"
            )
            return TissueDecision(np.full(n, ACROSS, dtype=object), None, ACROSS, evidence)
    best = dataset_fit.max()
    tied = [t for t in names if dataset_fit[t] >= best - 0.05]
    if len(tied) > 1:  # break near-ties with the marker signatures, then the plugin
        for frame in (marker_share, plugin_votes):
            if frame is None:
                continue
            cols = [t for t in tied if t in frame.columns]
            if cols:
                score = frame[cols].mul(sizes, axis=0).sum()
                tied = [str(score.idxmax())]
                evidence["tie_break"] = "marker signatures" if frame is marker_share else "plugin"
                break
    choice = tied[0]
    per_cluster = {}
    if dataset_fit[choice] >= DATASET_FIT:
        for c in fit.index:
            per_cluster[c] = choice if fit.loc[c, choice] >= CLUSTER_FIT else ACROSS
        how = "dataset"
        evidence["reason"] = (
            f"{choice} fits {dataset_fit[choice]:.0%} of the dataset's reference probability"
        )
    else:
        for c in fit.index:
            t = str(fit.loc[c].idxmax())
            per_cluster[c] = t if fit.loc[c, t] >= DATASET_FIT else ACROSS
        how = "clusters"
        evidence["reason"] = (
            f"no tissue fits the dataset (best: {choice}, {dataset_fit[choice]:.0%}); each "
            "cluster takes the tissue that fits it, or every reference class"
        )
    evidence["per_cluster"] = {str(c): t for c, t in per_cluster.items()}
    per_cell = np.array([per_cluster[c] for c in clusters], dtype=object)
    values = set(per_cell)
    tissue = values.pop() if len(values) == 1 and ACROSS not in per_cell else None
    if how == "dataset" and tissue is None:
        tissue = choice  # a few clusters are annotated across tissues
    return TissueDecision(per_cell, tissue, how, evidence)
