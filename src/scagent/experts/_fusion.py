"""Fusion: one call per cell from several experts, with a confidence that stays honest.

Every expert's probabilities are first placed on one label space, the reference's Cell
Ontology classes (:class:`Evidence`); each cell may only take the classes of the tissue it
was assigned (``allowed``). Then

1. **pooling**: a weighted geometric mean of the experts' probabilities (log-linear
   pooling, Genest & Zidek 1986), each probability floored at :data:`FLOOR` so that no single
   expert can veto a class; an expert without an opinion on a cell (a row of NaN) is left
   out for that cell;
2. **smoothing** over the query's own neighbour graph: ``(1 - a) P + a * mean of the
   neighbours' P``. Unlike majority voting over clusters, a rare type whose cells are each
   other's neighbours keeps its call;
3. **confidence**: a logistic model of whether the call is right, from the fused
   probability and margin, how many experts agree with the call, how many neighbours share
   it, each expert's probability of it, and how similar the cell is to its nearest
   reference class (far from every reference type means lower confidence).

The weights, ``a``, each expert's own temperature and the confidence model are learnt
(:func:`fit_fusion`) on cross-study tasks, where every query study is held out of the
reference (``scripts/fit_fusion.py``); they ship in ``experts/data/fusion.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = [
    "EXPERTS",
    "FLOOR",
    "Evidence",
    "Fused",
    "FusionParams",
    "fit_fusion",
    "fuse",
    "pool",
    "smooth",
]

#: Experts a user chooses among (``experts=`` of ``sa.tl.annotate``).
EXPERTS = ("reference", "markers", "plugin")
#: The opinions the fusion weighs: the marker expert speaks per cell and per cluster.
OPINIONS = ("reference", "markers", "markers_cluster", "plugin")
#: Lowest probability an expert's opinion counts with in pooling.
FLOOR = 1e-3
#: Smoothing weights tried when fitting.
SMOOTHING_GRID = (0.0, 0.2, 0.4, 0.6, 0.8)


@dataclass
class Evidence:
    """The experts' opinions on one label space.

    Attributes
    ----------
    classes, names
        Cell Ontology ids of the reference classes and readable names.
    allowed
        (cells, classes) bool: the classes each cell may take (its tissue's).
    probs
        Expert name to (cells, classes) probabilities (rows of NaN: no opinion).
    graph
        (cells, cells) row-normalised neighbour graph of the query.
    cell_info
        Extra per-cell measurements (``"reference_similarity"``).
    """

    classes: list[str]
    names: list[str]
    allowed: np.ndarray
    probs: dict[str, np.ndarray]
    graph: sp.csr_matrix
    cell_info: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return self.allowed.shape[0]


@dataclass
class FusionParams:
    """Learnt fusion settings (see the module docstring).

    Attributes
    ----------
    weights
        Pooling weight of each expert.
    smoothing
        Neighbour-smoothing weight ``a``.
    temperatures
        Each expert's own temperature (for its calibrated probabilities alone).
    confidence
        The confidence model: ``features``, their ``mean`` and ``scale``, ``coef``,
        ``intercept``.
    provenance
        Where the settings were learnt: tasks, cells, objective, date, command.
    """

    weights: dict[str, float]
    smoothing: float
    temperatures: dict[str, float]
    confidence: dict
    provenance: dict = field(default_factory=dict)

    def to_json(self, path: str | Path) -> None:
        """Write the settings as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> FusionParams:
        """Read settings written by :meth:`to_json`."""
        return cls(**json.loads(Path(path).read_text()))

    @classmethod
    def shipped(cls) -> FusionParams:
        """The settings learnt by ``scripts/fit_fusion.py`` and shipped with scagent."""
        return _shipped()


@cache
def _shipped() -> FusionParams:
    path = resources.files("scagent.experts") / "data" / "fusion.json"
    with resources.as_file(path) as p:
        if not Path(p).is_file():
            return uninformed()
        return FusionParams.from_json(p)


def uninformed() -> FusionParams:
    """Equal weights, no smoothing, and the fused probability as confidence (before any
    fitting)."""
    return FusionParams(
        weights=dict.fromkeys(OPINIONS, 1.0),
        smoothing=0.0,
        temperatures=dict.fromkeys(OPINIONS, 1.0),
        confidence={
            "features": ["p_top"],
            "mean": [0.0],
            "scale": [1.0],
            "coef": [],
            "intercept": 0.0,
        },
        provenance={"fitted": False},
    )


def _normalise(logp: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    logp = np.where(allowed, logp, -np.inf)
    logp = logp - logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def _log_opinions(ev: Evidence, names) -> dict[str, np.ndarray]:
    """Each opinion's floored log-probabilities within the allowed classes (0 where the
    expert has no opinion on a cell)."""
    out = {}
    for name in names:
        P = ev.probs.get(name)
        if P is None:
            continue
        valid = ~np.isnan(P).any(axis=1)
        masked = np.where(ev.allowed & valid[:, None], np.nan_to_num(P), 0.0)
        masked /= np.maximum(masked.sum(axis=1, keepdims=True), 1e-12)
        out[name] = np.where(valid[:, None], np.log(np.maximum(masked, FLOOR)), 0.0)
    return out


def _pool_logs(logs: dict[str, np.ndarray], weights: dict[str, float], allowed) -> np.ndarray:
    logp = np.zeros(allowed.shape, dtype=np.float64)
    for name, L in logs.items():
        w = weights.get(name, 0.0)
        if w:
            logp += w * L
    return _normalise(logp, allowed)


def pool(ev: Evidence, weights: dict[str, float]) -> np.ndarray:
    """Log-linear pooling of the experts within each cell's allowed classes."""
    return _pool_logs(_log_opinions(ev, weights), weights, ev.allowed)


def smooth(P: np.ndarray, graph: sp.csr_matrix, a: float, allowed: np.ndarray) -> np.ndarray:
    """Blend each cell's probabilities with its neighbours' mean (within allowed classes)."""
    if a <= 0:
        return P
    S = (1 - a) * P + a * np.asarray(graph @ P)
    S = np.where(allowed, S, 0.0)
    return S / np.maximum(S.sum(axis=1, keepdims=True), 1e-12)


def alone(ev: Evidence, name: str, temperature: float = 1.0) -> np.ndarray | None:
    """One expert's probabilities within the allowed classes at its temperature (rows of NaN
    where it has no opinion)."""
    P = ev.probs.get(name)
    if P is None:
        return None
    out = np.full(P.shape, np.nan)
    valid = ~np.isnan(P).any(axis=1)
    masked = np.where(ev.allowed[valid], P[valid], 0.0)
    masked /= np.maximum(masked.sum(axis=1, keepdims=True), 1e-12)
    out[valid] = _normalise(np.log(np.maximum(masked, 1e-12)) / temperature, ev.allowed[valid])
    return out


@dataclass
class Fused:
    """The fused result per cell.

    Attributes
    ----------
    probs
        (cells, classes) smoothed fused probabilities.
    call
        Index of the called class.
    confidence
        Calibrated probability that the call is right.
    agreement
        Share of the experts with an opinion whose own best class is the call.
    features
        The confidence model's inputs (name to per-cell array).
    """

    probs: np.ndarray
    call: np.ndarray
    confidence: np.ndarray
    agreement: np.ndarray
    features: dict[str, np.ndarray]


def _features(ev: Evidence, P: np.ndarray, call: np.ndarray) -> dict[str, np.ndarray]:
    n = len(call)
    rows = np.arange(n)
    top = P[rows, call]
    second = np.sort(P, axis=1)[:, -2] if P.shape[1] > 1 else np.zeros(n)
    votes, voters = np.zeros(n), np.zeros(n)
    feats = {"p_top": top, "log_p_top": np.log(np.maximum(top, 1e-6)), "margin": top - second}
    for name in OPINIONS:
        Pe = alone(ev, name)
        if Pe is None:
            feats[f"p_{name}"] = np.zeros(n)
            continue
        valid = ~np.isnan(Pe).any(axis=1)
        feats[f"p_{name}"] = np.where(valid, np.nan_to_num(Pe)[rows, call], 0.0)
        voters += valid
        votes += valid & (np.nan_to_num(Pe, nan=-1).argmax(axis=1) == call)
    feats["agreement"] = np.divide(votes, voters, out=np.zeros(n), where=voters > 0)
    onehot = sp.csr_matrix((np.ones(n), (rows, call)), shape=P.shape)
    feats["neighbours_agree"] = np.asarray((ev.graph @ onehot).multiply(onehot).sum(axis=1)).ravel()
    info = ev.cell_info
    feats["reference_similarity"] = np.asarray(
        info.get("reference_similarity", np.ones(n)), dtype=float
    )
    # how much the query tells: genes shared with the reference, and detected in the cell
    feats["log_panel_genes"] = np.log(np.maximum(info.get("panel_genes", np.ones(n)), 1.0))
    feats["log_genes_detected"] = np.log1p(info.get("panel_genes_detected", np.zeros(n)))
    return feats


def _confidence(params: FusionParams, feats: dict[str, np.ndarray]) -> np.ndarray:
    conf = params.confidence
    if not conf.get("coef"):
        return feats["p_top"]
    F = np.column_stack([feats[k] for k in conf["features"]])
    z = (F - np.asarray(conf["mean"])) / np.asarray(conf["scale"])
    logit = z @ np.asarray(conf["coef"]) + conf["intercept"]
    return 1.0 / (1.0 + np.exp(-logit))


def fuse(ev: Evidence, params: FusionParams | None = None) -> Fused:
    """Pool, smooth and score the experts' opinions (module docstring)."""
    params = params or FusionParams.shipped()
    P = smooth(pool(ev, params.weights), ev.graph, params.smoothing, ev.allowed)
    call = P.argmax(axis=1)
    feats = _features(ev, P, call)
    conf = _confidence(params, feats).astype(np.float32)
    return Fused(P.astype(np.float32), call, conf, feats["agreement"].astype(np.float32), feats)


def _nll(P: np.ndarray, targets: np.ndarray) -> float:
    return float(-np.log(np.maximum((P * targets).sum(axis=1), 1e-9)).mean())


def fit_fusion(
    examples: list[tuple[Evidence, np.ndarray]],
    *,
    experts: tuple[str, ...] = OPINIONS,
    provenance: dict | None = None,
) -> FusionParams:
    """Learn pooling weights, smoothing, temperatures and the confidence model.

    Parameters
    ----------
    examples
        Per task: the evidence and a (cells, classes) bool matrix of the classes that
        count as right for each cell (rows without any are not scored). Tasks weigh
        equally, whatever their size.
    experts
        Opinions to weigh (those absent from every task get weight 0).
    provenance
        Recorded in the result.

    Returns
    -------
    The fitted settings.
    """
    from scipy.optimize import minimize
    from sklearn.linear_model import LogisticRegression

    data = []
    for ev, targets in examples:
        keep = targets.any(axis=1)
        if keep.any():
            data.append((ev, targets, keep))
    absent = [e for e in experts if all(alone(ev, e) is None for ev, _, _ in data)]
    experts = tuple(e for e in experts if e not in absent)
    logs = [_log_opinions(ev, experts) for ev, _, _ in data]

    def objective(w: np.ndarray, a: float) -> float:
        weights = dict(zip(experts, np.maximum(w, 0)))
        total = 0.0
        for (ev, targets, keep), lg in zip(data, logs):
            P = smooth(_pool_logs(lg, weights, ev.allowed), ev.graph, a, ev.allowed)
            total += _nll(P[keep], targets[keep])
        return total / len(data)

    best = None
    for a in SMOOTHING_GRID:
        res = minimize(
            objective,
            np.ones(len(experts)),
            args=(a,),
            method="L-BFGS-B",
            bounds=[(0.0, 5.0)] * len(experts),
            options={"maxiter": 60},
        )
        if best is None or res.fun < best[0]:
            best = (float(res.fun), res.x, a)
    weights = {e: round(float(max(w, 0.0)), 4) for e, w in zip(experts, best[1])}
    weights.update(dict.fromkeys(absent, 0.0))
    temperatures = {}
    for name in experts:
        grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 41))
        losses = []
        for t in grid:
            parts = []
            for ev, targets, keep in data:
                Pe = alone(ev, name, t)
                if Pe is None:
                    continue
                ok = keep & ~np.isnan(Pe).any(axis=1)
                if ok.any():
                    parts.append(_nll(Pe[ok], targets[ok]))
            losses.append(np.mean(parts) if parts else np.inf)
        temperatures[name] = round(float(grid[int(np.argmin(losses))]), 4)
    params = FusionParams(weights, best[2], temperatures, uninformed().confidence)
    X, y, sw = [], [], []
    for ev, targets, keep in data:
        fused = fuse(ev, params)
        names = list(fused.features)
        F = np.column_stack([fused.features[k] for k in names])[keep]
        right = targets[keep][np.arange(keep.sum()), fused.call[keep]]
        X.append(F)
        y.append(right)
        sw.append(np.full(len(F), 1.0 / len(F)))
    X, y, sw = np.vstack(X), np.concatenate(y), np.concatenate(sw)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    if len(np.unique(y)) < 2:  # every call right (or wrong): a constant, Laplace-smoothed
        rate = (y.sum() + 1) / (len(y) + 2)
        coef, intercept = np.zeros(len(names)), float(np.log(rate / (1 - rate)))
    else:
        model = LogisticRegression(C=1.0, max_iter=2000)
        model.fit((X - mean) / scale, y, sample_weight=sw * len(sw))
        coef, intercept = model.coef_[0], float(model.intercept_[0])
    params.confidence = {
        "features": names,
        "mean": mean.round(6).tolist(),
        "scale": scale.round(6).tolist(),
        "coef": coef.round(6).tolist(),
        "intercept": round(intercept, 6),
    }
    params.provenance = {
        **(provenance or {}),
        "fitted": True,
        "n_tasks": len(data),
        "n_cells": int(sum(k.sum() for _, _, k in data)),
        "objective_nll": round(best[0], 4),
    }
    return params
