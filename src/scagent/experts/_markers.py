"""The marker-knowledge expert: curated marker sets scored per cell and per cluster.

Scores are rank based, so they hold across technologies and normalisations: each cell's
non-zero values are replaced by their percentile within the cell, then every marker set of
the bundled table (:func:`scagent.knowledge.marker_table`) is scored with a decoupler method
(``decoupler.mt.ulm`` by default, or ``decoupler.mt.waggr``), markers weighted by how
unevenly the data detect them. A cell type's score is the mean of the scores of its own
markers and of each ancestor's markers in the marker hierarchy, so a subtype must show its
lineage's markers too (a CD8 T cell set cannot win on GZMK alone).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._errors import InputDataError
from ..knowledge import cell_ontology, marker_parents, marker_sets, marker_table
from ._base import ExpertCall

__all__ = [
    "MarkerScores",
    "marker_calls",
    "marker_expert",
    "score_markers",
    "tissue_evidence",
]

METHODS = ("waggr", "ulm")
_SHRINK = "__shrink__"


@dataclass
class MarkerScores:
    """Marker-set scores of a set of cells.

    Attributes
    ----------
    cells
        (cells, terms) scores; a row of NaN for a cell in which no marker gene was detected.
        Scores are in within-cell rank units (a gene's percentile among the cell's expressed
        genes): 0 or below when a set's markers rank no higher than the table's other marker
        genes, towards 1 when they all rank at the top of the cell.
    levels
        (cells, levels) score of each term's own markers alone (before the hierarchy).
    groups
        (groups, terms) mean score of each group's cells, or ``None`` without groups.
    skipped
        Terms not scored, with the reason (e.g. too few of their markers measured).
    info
        JSON-serialisable record: method, genes used, terms scored and skipped, timings.
    """

    cells: pd.DataFrame
    levels: pd.DataFrame
    groups: pd.DataFrame | None
    skipped: dict[str, str] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def _as_csr(X, genes: Sequence[str]) -> tuple[sp.csr_matrix, np.ndarray]:
    genes = np.asarray(genes, dtype=str)
    if X.ndim != 2 or X.shape[1] != len(genes):
        msg = f"X has shape {X.shape} but {len(genes)} gene names: pass one name per column."
        raise InputDataError(msg)
    X = sp.csr_matrix(X, dtype=np.float32) if not sp.issparse(X) else sp.csr_matrix(X)
    if X.dtype != np.float32:
        X = X.astype(np.float32)
    if not np.all(np.isfinite(X.data)):
        msg = "X contains NaN or infinite values; marker scores need finite expression values."
        raise InputDataError(msg)
    if X.data.size and X.data.min() < 0:
        msg = (
            "X contains negative values (scaled or centred data?); pass non-negative "
            "expression, e.g. log1p(CP10k) values, counts or TPM."
        )
        raise InputDataError(msg)
    if (X.data == 0).any():
        X = X.copy()
        X.eliminate_zeros()
    return X, genes


def _within_cell_ranks(X: sp.csr_matrix, cols: np.ndarray) -> np.ndarray:
    """Percentile of each value among the cell's non-zero values, for the given columns."""
    n_cells = X.shape[0]
    per_row = np.diff(X.indptr)
    rows = np.repeat(np.arange(n_cells), per_row)
    top = float(X.data.max()) if X.data.size else 1.0
    key = rows + X.data.astype(np.float64) / (top * 1.0001)  # sorts by row, then value
    ordered = np.sort(key)
    pos = np.full(X.shape[1], -1)
    pos[cols] = np.arange(len(cols))
    sel = np.flatnonzero(pos[X.indices] >= 0)
    k = key[sel]
    lo = np.searchsorted(ordered, k, "left")
    hi = np.searchsorted(ordered, k, "right")
    r = rows[sel]
    mid_rank = (lo + hi - 1) / 2.0 - X.indptr[r] + 1.0  # 1-based, ties share the mid rank
    out = np.zeros((n_cells, len(cols)), dtype=np.float32)
    out[r, pos[X.indices[sel]]] = mid_rank / per_row[r]
    return out


def _specificity(B: sp.csr_matrix, codes: np.ndarray | None, floor: float) -> np.ndarray:
    """Gene weights from the data: genes detected everywhere tell cell types apart poorly."""
    detected = sp.csr_matrix((np.ones_like(B.data), B.indices, B.indptr), shape=B.shape)
    if codes is None:
        w = 1.0 - np.asarray(detected.mean(axis=0)).ravel()
    else:
        n_groups = int(codes.max()) + 1
        member = sp.csr_matrix(
            (np.ones(len(codes), np.float32), (codes, np.arange(len(codes)))),
            shape=(n_groups, len(codes)),
        )
        counts = np.bincount(codes, minlength=n_groups)[:, None]
        rate = (member @ detected).toarray() / counts
        top = rate.max(axis=0)
        w = 1.0 - np.divide(rate.mean(axis=0), top, out=np.ones_like(top), where=top > 0)
    return np.clip(w, floor, 1.0)


def _chain(levels: list[str], terms: list[str], parents: dict[str, str]) -> np.ndarray:
    """(levels, terms) 1 where the level is the term or one of its ancestors."""
    idx = {t: i for i, t in enumerate(levels)}
    C = np.zeros((len(levels), len(terms)))
    for j, t in enumerate(terms):
        p = t
        while p:
            if p in idx:
                C[idx[p], j] = 1.0
            p = parents.get(p, "")
    return C


def _sibling_lead(L: np.ndarray, levels: list[str], parents: dict[str, str]) -> np.ndarray:
    """Each level's score minus the best score among its siblings (0 for top levels)."""
    idx = {t: i for i, t in enumerate(levels)}
    by_parent: dict[str, list[int]] = {}
    for t in levels:
        p = parents.get(t, "")
        while p and p not in idx:
            p = parents.get(p, "")
        if p:
            by_parent.setdefault(p, []).append(idx[t])
    lead = np.zeros_like(L)
    for members in by_parent.values():
        sub = L[:, members]
        for k, j in enumerate(members):
            others = np.delete(sub, k, axis=1)
            lead[:, j] = sub[:, k] - (others.max(axis=1) if others.shape[1] else 0.0)
    return lead


def _run_decoupler(M: np.ndarray, cols: list[str], net: pd.DataFrame, method: str) -> np.ndarray:
    try:
        import decoupler as dc
    except ImportError as err:  # pragma: no cover - decoupler is a dependency
        msg = "The marker expert needs decoupler>=2.2: pip install 'decoupler>=2.2'"
        raise ImportError(msg) from err
    df = pd.DataFrame(M, columns=cols, index=np.arange(M.shape[0]).astype(str))
    if method == "waggr":
        es, _ = dc.mt.waggr(df, net, tmin=1, times=0, empty=False)
    else:
        es, _ = dc.mt.ulm(df, net, tmin=1, tval=False, empty=False)
    return es.reindex(index=df.index, columns=list(dict.fromkeys(net["source"]))).to_numpy()


def _marker_levels(genes: np.ndarray, kind: str, tissue: str | None, min_genes: int):
    """The measured part of every set; the levels to score and the terms to report."""
    col_of: dict[str, int] = {}
    for i, g in enumerate(genes):
        col_of.setdefault(g, i)  # a duplicated gene name counts once, at its first column
    own = marker_sets(kind, context=tissue)
    own = {t: {g: w for g, w in s.items() if g in col_of} for t, s in own.items()}
    skipped = {t: "none of its markers measured" for t, s in own.items() if not s}
    levels = [t for t, s in own.items() if any(w > 0 for w in s.values())]
    for t in set(own) - set(levels) - set(skipped):
        skipped[t] = "no positive marker measured"
    parents = marker_parents() if kind == "cell_type" else {}
    n_pos = np.array([sum(w > 0 for w in own[t].values()) for t in levels])
    chain_pos = n_pos @ _chain(levels, levels, parents)
    terms = [t for t, n in zip(levels, chain_pos) if n >= min_genes]
    for t, n in zip(levels, chain_pos):
        if n < min_genes:
            skipped[t] = f"only {int(n)} positive markers measured (min_genes={min_genes})"
    if not terms:
        msg = (
            f"None of the {kind} marker sets has {min_genes} measured markers: are the genes "
            "current human symbols (e.g. 'CD3E', not Ensembl ids or mouse symbols)?"
        )
        raise InputDataError(msg)
    # every measured gene of the table is scored, so that each set has a background (ULM
    # contrasts a set's markers with the other marker genes) even when one set is scored
    used = sorted(set(marker_table()["gene"]) & set(col_of))
    return own, levels, terms, skipped, parents, used, np.array([col_of[g] for g in used])


def score_markers(
    X,
    genes: Sequence[str],
    *,
    kind: str = "cell_type",
    groups: Sequence | None = None,
    method: str = "ulm",
    min_genes: int = 3,
    tissue: str | None = None,
    specificity: float = 0.1,
    shrink: float = 2.0,
    weight_floor: float = 0.3,
    chunk_size: int = 20_000,
) -> MarkerScores:
    """Score the bundled marker sets in every cell (and group of cells).

    Parameters
    ----------
    X
        (cells, genes) expression, scipy sparse or dense, non-negative: log1p(CP10k) values
        (counts or TPM give the same scores, as only within-cell ranks are used).
    genes
        Current human gene symbol of each column.
    kind
        Which sets: ``"cell_type"``, ``"tissue"`` or ``"state"``.
    groups
        Optional cluster label of each cell: adds per-group scores, and the gene weights
        are then computed across groups rather than across cells.
    method
        ``"ulm"`` (decoupler's univariate linear model, its slope: the weighted difference
        between a set's markers and the other marker genes) or ``"waggr"`` (decoupler's
        weighted mean; slower), both on within-cell ranks.
    min_genes
        A term is scored only if at least this many positive markers of it and its
        ancestors were measured, at least one of them its own; others go to ``skipped``.
    tissue
        Use only markers whose context is ``"any"`` or this tissue.
    specificity
        Weight of a term's lead over its siblings (each level's own score minus the best
        sibling's), added along its hierarchy. 0 gives the most robust (often coarser) calls;
        larger values favour specific subtypes at some cost in ontology-consistent accuracy
        (measured on the shared data: 0, 0.1 and 0.25 gave 0.94, 0.93 and 0.91 with clusters).
    shrink
        Weight of a pseudo-marker of score 0 added to every set (relative to the set's mean
        marker weight), so that a set with one or two measured markers cannot reach a high
        score on one stray gene.
    weight_floor
        Smallest gene weight. Each marker is weighted by how unevenly it is detected across
        groups (or cells): ``1 - mean rate / max rate`` (``1 - rate`` without groups).
    chunk_size
        Cells scored at a time (bounds memory on large data).

    Returns
    -------
    The scores; see :class:`MarkerScores`.
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        msg = f"method={method!r} is not one of {METHODS}."
        raise InputDataError(msg)
    X, genes = _as_csr(X, genes)
    n_cells = X.shape[0]
    codes = uniq = None
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != n_cells:
            msg = f"groups has {len(groups)} labels for {n_cells} cells; pass one per cell."
            raise InputDataError(msg)
        codes, uniq = pd.factorize(groups)
        if (codes < 0).any():
            msg = "groups contains missing labels; give every cell a group."
            raise InputDataError(msg)
    own, levels, terms, skipped, parents, used, cols = _marker_levels(
        genes, kind, tissue, min_genes
    )
    weight = dict(zip(used, _specificity(X[:, cols], codes, weight_floor)))
    in_sets = {g for t in levels for g in own[t]}
    rows = []
    for t in levels:
        r = [(t, g, float(w) * weight[g]) for g, w in own[t].items()]
        rows += r
        if shrink > 0:
            rows.append((t, _SHRINK, shrink * float(np.mean([abs(x[2]) for x in r]))))
    net = pd.DataFrame(rows, columns=["source", "target", "weight"])
    positive = np.array([g in in_sets and any(own[t].get(g, 0) > 0 for t in levels) for g in used])
    L = np.empty((n_cells, len(levels)))
    empty = np.zeros(n_cells, dtype=bool)
    for start in range(0, n_cells, chunk_size):
        part = X[start : start + chunk_size]
        M = _within_cell_ranks(part, cols)
        n = len(M)
        empty[start : start + n] = ~(M[:, positive] > 0).any(axis=1)
        some = np.flatnonzero((M > 0).any(axis=1))  # decoupler needs a non-constant row
        M = np.hstack([M[some], np.zeros((len(some), 1), np.float32)])
        block = np.full((n, len(levels)), np.nan)
        if len(some):
            block[some] = _run_decoupler(M, [*used, _SHRINK], net, method)
        L[start : start + n] = block
    C = _chain(levels, terms, parents)
    S = (L @ C) / C.sum(axis=0)
    if specificity:
        S = S + specificity * (_sibling_lead(L, levels, parents) @ C)
    S[empty] = np.nan
    L[empty] = np.nan
    cells = pd.DataFrame(S, columns=terms)
    grouped = None
    if codes is not None:
        grouped = cells.groupby(codes).mean()
        grouped.index = pd.Index(uniq[grouped.index], name="group")
    info = {
        "kind": kind,
        "method": f"decoupler.mt.{method}",
        "transform": "within-cell rank percentile of non-zero values",
        "n_genes_used": len(used),
        "n_terms_scored": len(terms),
        "n_terms_skipped": len(skipped),
        "n_cells_without_markers": int(empty.sum()),
        "min_genes": int(min_genes),
        "tissue": tissue,
        "specificity": float(specificity),
        "shrink": float(shrink),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return MarkerScores(
        cells=cells,
        levels=pd.DataFrame(L, columns=levels),
        groups=grouped,
        skipped=dict(sorted(skipped.items())),
        info=info,
    )


def _to_candidates(S: pd.DataFrame, candidates: Sequence[str]) -> tuple[np.ndarray, dict[str, str]]:
    """Scores over candidate terms: each table term counts for its nearest candidate ancestor."""
    co = cell_ontology()
    table_terms = list(S.columns)
    owner: dict[str, list[int]] = {c: [] for c in candidates}
    for j, t in enumerate(table_terms):
        anc = co.ancestors(t) if t in co else {}
        near = [(0 if c == t else anc[c], c) for c in candidates if c == t or c in anc]
        if near:
            owner[min(near)[1]].append(j)
    A = S.to_numpy()
    out = np.full((len(S), len(candidates)), np.nan)
    how: dict[str, str] = {}
    for k, c in enumerate(candidates):
        if owner[c]:
            sub = A[:, owner[c]]
            best = np.where(np.isnan(sub), -np.inf, sub).max(axis=1)
            out[:, k] = np.where(np.isneginf(best), np.nan, best)
            how[c] = "markers" if c in table_terms else f"best of {len(owner[c])} subtypes"
            continue
        anc = co.ancestors(c) if c in co else {}
        up = sorted((d, t) for t, d in anc.items() if t in table_terms)
        if up:
            out[:, k] = A[:, table_terms.index(up[0][1])]
            how[c] = f"via ancestor {up[0][1]}"
        else:
            how[c] = "no markers"
    return out, how


def _softmax(A: np.ndarray, scale: float) -> np.ndarray:
    """Row-wise softmax over the finite entries; NaN entries get 0, all-NaN rows stay NaN."""
    finite = ~np.isnan(A)
    top = np.where(finite, A, -np.inf).max(axis=1, keepdims=True)
    undecided = ~finite.any(axis=1)
    top[undecided] = 0.0
    E = np.where(finite, np.exp(scale * (np.where(finite, A, 0.0) - top)), 0.0)
    total = E.sum(axis=1, keepdims=True)
    P = E / np.where(total > 0, total, 1.0)
    P[undecided] = np.nan
    return P


def marker_expert(
    X,
    genes: Sequence[str],
    *,
    groups: Sequence | None = None,
    terms: Sequence[str] | None = None,
    tissue: str | None = None,
    scale: float = 40.0,
    cluster_weight: float = 0.5,
    method: str = "ulm",
    min_genes: int = 3,
    specificity: float = 0.1,
) -> ExpertCall:
    """The marker-knowledge expert: probabilities over Cell Ontology terms per cell.

    Parameters
    ----------
    X
        (cells, genes) non-negative expression (log1p(CP10k), counts or TPM), sparse or dense.
    genes
        Current human gene symbol of each column.
    groups
        Cluster label of each cell (e.g. Leiden). A cell's score is then blended with its
        cluster's mean score, which is far more robust than one dropout-heavy cell; a cell
        with no marker detected takes its cluster's score.
    terms
        Candidate Cell Ontology ids. Each scored term counts for its nearest candidate
        ancestor (a candidate takes the best of its subtypes' scores); a candidate with no
        marker set of its own or below takes its nearest scored ancestor's score. ``None``:
        every scored term of the marker table.
    tissue
        Use only markers whose context is ``"any"`` or this tissue.
    scale
        Softmax scale: probabilities are ``softmax(scale * score)``. Scores are in within-cell
        rank units, where the best and second-best terms typically differ by 0.05-0.3. At 40,
        on the shared labelled data (cluster-blended), the mass on terms consistent with the
        label (the label, its ancestors or descendants) was close to, and slightly below, the
        share of correct best terms; the fusion step calibrates it further.
    cluster_weight
        Weight of the cluster score in the blend (0 = cells alone, 1 = clusters alone).
    method, min_genes, specificity
        As in :func:`score_markers`.

    Returns
    -------
    An :class:`~scagent.experts.ExpertCall` named ``"markers"``; ``info`` holds the method,
    the numbers of terms scored and skipped (with reasons) and how each candidate was scored.
    """
    if not 0.0 <= cluster_weight <= 1.0:
        msg = f"cluster_weight must lie in [0, 1], got {cluster_weight}."
        raise InputDataError(msg)
    res = score_markers(
        X,
        genes,
        kind="cell_type",
        groups=groups,
        method=method,
        min_genes=min_genes,
        tissue=tissue,
        specificity=specificity,
    )
    S = res.cells
    if res.groups is not None and cluster_weight > 0:
        codes = pd.Index(res.groups.index).get_indexer(np.asarray(groups))
        G = res.groups.to_numpy()[codes]
        A = S.to_numpy()
        S = pd.DataFrame(
            np.where(np.isnan(A), G, (1 - cluster_weight) * A + cluster_weight * G),
            columns=S.columns,
        )
    info = dict(res.info)
    if terms is None:
        cand, A = list(S.columns), S.to_numpy()
    else:
        cand = list(dict.fromkeys(terms))
        A, how = _to_candidates(S, cand)
        info["candidates"] = how
    co = cell_ontology()
    table = marker_table()
    labels = dict(zip(table["term"], table["term_label"]))
    names = [co.label(t) if t in co else labels.get(t, t) for t in cand]
    info.update(
        {
            "scale": float(scale),
            "cluster_weight": float(cluster_weight) if groups is not None else 0.0,
            "skipped": res.skipped,
            "n_cells_undecided": int(np.isnan(A).all(axis=1).sum()),
        }
    )
    return ExpertCall("markers", _softmax(A, scale), cand, names, info)


def marker_calls(
    X,
    genes: Sequence[str],
    *,
    groups: Sequence,
    terms: Sequence[str],
    tissue: str | None = None,
    scale: float = 40.0,
    method: str = "ulm",
    min_genes: int = 3,
    specificity: float = 0.1,
) -> tuple[ExpertCall, ExpertCall]:
    """The marker expert twice from one scoring: per cell, and per cluster.

    A cell's own markers name a rare type sitting inside a bigger cluster (a mast cell among
    alpha cells); its cluster's markers are robust to the dropout of a lone cell. The fusion
    weighs the two (named ``"markers"`` and ``"markers_cluster"``); a cell in which no marker
    gene was detected has no per-cell opinion (a row of NaN).

    Parameters are as in :func:`marker_expert`; ``groups`` and ``terms`` are required.
    """
    res = score_markers(
        X,
        genes,
        kind="cell_type",
        groups=groups,
        method=method,
        min_genes=min_genes,
        tissue=tissue,
        specificity=specificity,
    )
    cand = list(dict.fromkeys(terms))
    co = cell_ontology()
    table = marker_table()
    labels = dict(zip(table["term"], table["term_label"]))
    names = [co.label(t) if t in co else labels.get(t, t) for t in cand]
    A, how = _to_candidates(res.cells, cand)
    codes = pd.Index(res.groups.index).get_indexer(np.asarray(groups))
    G = _to_candidates(res.groups, cand)[0][codes]
    info = {**res.info, "scale": float(scale), "skipped": res.skipped, "candidates": how}
    cell = ExpertCall("markers", _softmax(A, scale), cand, names, {**info, "level": "cell"})
    cluster = ExpertCall(
        "markers_cluster", _softmax(G, scale), cand, names, {**info, "level": "cluster"}
    )
    return cell, cluster


def tissue_evidence(
    X,
    genes: Sequence[str],
    *,
    groups: Sequence | None = None,
    method: str = "ulm",
    min_genes: int = 3,
) -> pd.DataFrame:
    """Tissue-signature scores per group of cells, or for the whole dataset.

    Parameters
    ----------
    X
        (cells, genes) non-negative expression, sparse or dense.
    genes
        Current human gene symbol of each column.
    groups
        Cluster (or sample) label of each cell; ``None`` scores the dataset as one group.
    method, min_genes
        As in :func:`score_markers`.

    Returns
    -------
    (groups, tissues) mean score of each tissue signature (``"blood"``, ``"pancreas"``...;
    index ``"all"`` without groups). Higher is stronger evidence; compare tissues within a
    row. Tissues with too few measured signature genes are absent.
    """
    n = X.shape[0]
    labels = np.asarray(groups) if groups is not None else np.full(n, "all", dtype=object)
    res = score_markers(X, genes, kind="tissue", groups=labels, method=method, min_genes=min_genes)
    out = res.groups.rename(columns=lambda t: t.split(":", 1)[1])
    return out.sort_index(axis=1)
