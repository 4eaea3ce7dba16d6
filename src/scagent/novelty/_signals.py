"""Per-cell signs that a cell may belong to no known type.

Each signal is oriented so that larger means "less like any known type":

``uncertainty``
    1 - the calibrated confidence of the annotation.
``disagreement``
    1 - the share of experts whose own call is the fused call.
``similarity_deficit``
    How far the cell's similarity to its called reference class (cosine, on the genes it
    shares with the reference) falls below that class's own cells' 5% quantile, in units
    of the class's spread (median - 5% quantile); 0 at the quantile.
``outside_markers``
    The marker expert's probability (over every marker set of the table, not only the
    reference's classes) on cell types that are neither a reference class nor an ancestor
    or descendant of one: the markers of a type the reference lacks; counted beyond the
    called class's own reference cells' mass (:mod:`~scagent.novelty._baseline`), so a
    class whose own cells read as another type (e.g. one learnt under a name the marker
    table lacks) does not make its cells look new.
``distance_ratio_<space>``
    Cosine distance to the called class's centroid in the pretrained or tuned embedding
    space, over that class's 95% quantile of its own cells' distances (the paper's outlier
    rule, with a per-class threshold from the reference's own distribution).
``neighbour_disagreement_<space>``
    Share of the cell's ``k`` nearest known cells in that space whose type is not the call.
``open_set_rejected``
    1 when no reference class of the cell's tissue accepts it by its own one-vs-rest model
    and threshold (DOC's rule, :mod:`~scagent.novelty._openset`), else 0.
``call_marker_deficit``
    How much less marker mass the cell puts on its call (the call, its ancestors and
    descendants) than the called class's own reference cells do: ``1 - support / baseline``,
    clipped to [0, 1] (:mod:`~scagent.novelty._baseline`); NaN where the class's own cells
    put under :data:`MIN_BASELINE_SUPPORT` on it (the markers do not know the class).

Beside the signals, the frame holds the context they are read in: ``call``, ``tissue``,
``cluster`` and ``class_median_ratio_pretrained``, the called class's own cells' median
distance to its centroid over their 95% quantile (the ``distance_ratio_pretrained`` of a
typical reference cell of that class).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._constants import OBS_AGREEMENT, OBS_CLUSTER, OBS_CONF, OBS_ONTOLOGY, OBS_TISSUE
from ..knowledge import cell_ontology
from ..memory import ClassStats, Neighbours
from ._neighbours import NeighbourSource

__all__ = [
    "MIN_BASELINE_SUPPORT",
    "SIGNALS",
    "CellSignals",
    "call_support",
    "cell_signals",
    "outside_mass",
]

SIGNALS = (
    "uncertainty",
    "disagreement",
    "similarity_deficit",
    "outside_markers",
    "distance_ratio_pretrained",
    "neighbour_disagreement_pretrained",
    "distance_ratio_tuned",
    "neighbour_disagreement_tuned",
    "open_set_rejected",
    "call_marker_deficit",
)

#: Marker mass a class's own reference cells must put on the class for the markers to
#: confirm (or not) query cells called that class.
MIN_BASELINE_SUPPORT = 0.1


@dataclass
class CellSignals:
    """Signals of every cell, and what they were computed from.

    Attributes
    ----------
    frame
        One row per cell: :data:`SIGNALS` (NaN where a space or expert was missing), the
        call, tissue, cluster and ``class_median_ratio_pretrained`` (see the module
        docstring).
    neighbours
        Space name to the cells' nearest known cells.
    hints
        Per cell: the best cell type outside the reference by the markers (Cell Ontology
        id), its label and probability (``""``/0 when none).
    info
        What was used (spaces searched, k, reference classes).
    """

    frame: pd.DataFrame
    neighbours: dict[str, Neighbours]
    hints: pd.DataFrame
    info: dict = field(default_factory=dict)


def _related(term: str, classes: set[str]) -> bool:
    onto = cell_ontology()
    if term in classes:
        return True
    if term not in onto:
        return False
    anc = set(onto.ancestors(term))
    return bool(anc & classes) or any(c in onto and term in onto.ancestors(c) for c in classes)


def outside_mass(call, reference_classes) -> tuple[np.ndarray, pd.DataFrame]:
    """Marker probability on types unrelated to the reference, and the best such type.

    Parameters
    ----------
    call
        The marker expert's :class:`~scagent.experts.ExpertCall` over all marker terms.
    reference_classes
        Cell Ontology ids of the reference's classes.

    Returns
    -------
    Per cell, the outside mass, and a frame of the best outside type (``hint_id``,
    ``hint_name``, ``hint_probability``).
    """
    classes = set(reference_classes)
    outside = np.array([not _related(t, classes) for t in call.terms], dtype=bool)
    P = np.nan_to_num(call.probs, nan=0.0)
    mass = P[:, outside].sum(axis=1) if outside.any() else np.zeros(len(P))
    hints = pd.DataFrame(
        {"hint_id": "", "hint_name": "", "hint_probability": 0.0}, index=np.arange(len(P))
    )
    if outside.any():
        sub = P[:, outside]
        best = sub.argmax(axis=1)
        ids = np.asarray(call.terms, dtype=object)[outside][best]
        names = np.asarray(call.names, dtype=object)[outside][best]
        prob = sub[np.arange(len(P)), best]
        hints = pd.DataFrame({"hint_id": ids, "hint_name": names, "hint_probability": prob})
    return mass.astype(np.float32), hints


def call_support(call, calls) -> np.ndarray:
    """Per cell, the marker expert's mass on its call, the call's ancestors and descendants.

    Parameters
    ----------
    call
        The marker expert's :class:`~scagent.experts.ExpertCall` over all marker terms.
    calls
        Each cell's called class (a Cell Ontology id; other names get 0).
    """
    calls = np.asarray(calls).astype(str)
    P = np.nan_to_num(call.probs, nan=0.0)
    out = np.zeros(len(calls), dtype=np.float32)
    for c in np.unique(calls):
        related = np.array([_related(t, {c}) for t in call.terms], dtype=bool)
        if related.any():
            rows = calls == c
            out[rows] = P[rows][:, related].sum(axis=1)
    return out


def _centroid_ratio(
    vectors: np.ndarray, calls: np.ndarray, stats: ClassStats, tissues: np.ndarray, *, strict: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distance to the called class's centroid over the class's 95% quantile, and the
    class's own median distance over the same quantile.

    The class is the call within the cell's tissue; unless ``strict`` (the tuned space,
    where each tissue's plugin makes its own space), a call the tissue lacks falls back to
    that call's largest class in another tissue (or the pooled one).
    """
    out = np.full(len(calls), np.nan, dtype=np.float32)
    own = np.full(len(calls), np.nan, dtype=np.float32)
    table = stats.table
    if table.empty:
        return out, own
    V = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    C = stats.centroids / np.maximum(np.linalg.norm(stats.centroids, axis=1, keepdims=True), 1e-12)
    by_pair: dict[tuple, int] = {}
    by_term: dict[str, int] = {}
    sizes = table["n"].to_numpy(dtype=float) if "n" in table else np.ones(len(table))
    for i, row in table.reset_index(drop=True).iterrows():
        # several plugin versions: the last row of a class wins (rows are sorted by version)
        by_pair[(row["term"], row["tissue"])] = i
        j = by_term.get(row["term"])
        if j is None or sizes[i] >= sizes[j]:
            by_term[row["term"]] = i
    q95 = table["q95"].to_numpy(dtype=float)
    q50 = table["q50"].to_numpy(dtype=float) if "q50" in table else np.full(len(table), np.nan)
    for i in range(len(calls)):
        if not np.isfinite(V[i]).all():
            continue
        j = by_pair.get((calls[i], tissues[i]))
        if j is None and not strict:
            j = by_term.get(calls[i])
        if j is None:
            continue
        d = 1.0 - float(V[i] @ C[j])
        out[i] = d / max(q95[j], 1e-3)
        own[i] = q50[j] / max(q95[j], 1e-3)
    return out, own


def _neighbour_disagreement(nb: Neighbours, calls: np.ndarray) -> np.ndarray:
    found = ~np.isnan(nb.distance)
    same = (nb.fields["cell_type_ontology_term_id"] == calls[:, None]) & found
    n = found.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, 1.0 - same.sum(axis=1) / n, np.nan).astype(np.float32)


def cell_signals(
    adata,
    *,
    source: NeighbourSource,
    pretrained: np.ndarray,
    tuned: np.ndarray | None,
    markers,
    reference_classes,
    self_similarity: dict[str, tuple[float, float]],
    similarity: np.ndarray,
    open_set: np.ndarray | None = None,
    marker_baseline: pd.DataFrame | None = None,
    k: int = 10,
) -> CellSignals:
    """The novelty signals of an annotated query (see the module docstring).

    Parameters
    ----------
    adata
        The query after :func:`scagent.tl.annotate`.
    source
        Nearest known cells and class statistics (``None``: no neighbour signals).
    pretrained, tuned
        The query's embeddings in both spaces (``tuned`` may be ``None``; NaN rows where no
        plugin ran).
    markers
        The marker expert's call over every marker term.
    reference_classes
        Cell Ontology ids of the reference's classes.
    self_similarity
        Per class: the 5% quantile and median of its own reference cells' similarity.
    similarity
        Each query cell's similarity to its nearest reference class.
    open_set
        Per cell, whether every reference class rejected it (``None``: not computed).
    marker_baseline
        Per class, its own reference cells' marker mass outside the reference and on the
        class (:func:`~scagent.novelty.class_marker_baseline`; ``None``: no outside
        baseline, and no ``call_marker_deficit``).
    k
        Neighbours per space.
    """
    obs = adata.obs
    calls = obs[OBS_ONTOLOGY].astype(str).to_numpy(dtype=object)
    tissues = obs[OBS_TISSUE].astype(str).to_numpy(dtype=object)
    frame = pd.DataFrame(index=obs.index)
    frame["call"] = calls
    frame["tissue"] = tissues
    frame["cluster"] = obs[OBS_CLUSTER].astype(str).to_numpy()
    frame["uncertainty"] = 1.0 - obs[OBS_CONF].to_numpy(dtype=float)
    frame["disagreement"] = 1.0 - obs[OBS_AGREEMENT].to_numpy(dtype=float)
    q = np.array([self_similarity.get(c, (np.nan, np.nan)) for c in calls], dtype=float)
    spread = np.maximum(q[:, 1] - q[:, 0], 0.02)
    frame["similarity_deficit"] = (q[:, 0] - similarity) / spread
    mass, hints = outside_mass(markers, reference_classes)
    baseline = marker_baseline if marker_baseline is not None else pd.DataFrame()
    per_cell = baseline.reindex(pd.Index(calls.astype(str)))
    if "outside" in per_cell:
        mass = np.maximum(mass - per_cell["outside"].fillna(0.0).to_numpy(np.float32), 0.0)
    frame["outside_markers"] = mass
    deficit = np.full(len(calls), np.nan, dtype=np.float32)
    if "support" in per_cell:
        base = per_cell["support"].to_numpy(dtype=float)
        known = base >= MIN_BASELINE_SUPPORT
        support = call_support(markers, calls)
        deficit[known] = np.clip(1.0 - support[known] / base[known], 0.0, 1.0)
    frame["call_marker_deficit"] = deficit
    hints.index = obs.index
    neighbours = {}
    spaces = {"pretrained": pretrained, "tuned": tuned}
    frame["class_median_ratio_pretrained"] = np.nan
    for space, V in spaces.items():
        if source is None or V is None or not np.isfinite(V).any():
            frame[f"distance_ratio_{space}"] = np.nan
            frame[f"neighbour_disagreement_{space}"] = np.nan
            continue
        ok = np.isfinite(V).all(axis=1)
        nb = Neighbours.empty(space, len(V), k)
        if ok.any():
            found = source.search(
                space, V[ok], k=k, tissue=tissues[ok] if space == "tuned" else None
            )
            nb.distance[ok] = found.distance
            for f_name in nb.fields:
                nb.fields[f_name][ok] = found.fields[f_name]
        neighbours[space] = nb
        stats = source.class_stats(space)
        ratio, own = _centroid_ratio(V, calls, stats, tissues, strict=space == "tuned")
        frame[f"distance_ratio_{space}"] = ratio
        if space == "pretrained":
            frame["class_median_ratio_pretrained"] = own
        frame[f"neighbour_disagreement_{space}"] = _neighbour_disagreement(nb, calls)
    frame["open_set_rejected"] = (
        np.full(len(frame), np.nan, dtype=np.float32)
        if open_set is None
        else np.asarray(open_set, dtype=np.float32)
    )
    info = {
        "k": k,
        "spaces": sorted(neighbours),
        "n_reference_classes": len(set(reference_classes)),
    }
    return CellSignals(frame, neighbours, hints, info)
