"""Running scagent's experts and the peers on one benchmark task, with an on-disk cache.

The experts' evidence of a task (probabilities on the reference classes, the neighbour
graph...) is what the fusion is fitted on and evaluated with, so it is computed once per
task and kept (``.npz``, no pickle) until the task, the reference, the encoder or the
recipe changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._constants import LAYER_LOG1P
from ..experts import Evidence, gather_evidence
from ..experts._reference import RECIPE, _fingerprint
from ..pp import prepare
from ._lazy_registry import LazyRegistry
from ._ontoscore import call_is_right
from ._peers import Peer
from ._tasks import Task

__all__ = ["TaskRun", "peer_predictions", "run_experts", "targets_for"]

#: Experts run on every benchmark task, and so the opinions the shipped fusion is fitted on.
#: The plugin expert is left out for now: it needs a plugin trained on each task's own
#: reference (the held-out study must not be in it), about 10 minutes of CPU per task and
#: tissue, which the benchmark's budget does not cover yet. Its fusion weight is therefore 0
#: (``fit_fusion`` gives absent opinions no weight); plugins still give ``X_scagent_tuned``.
BENCH_EXPERTS: tuple[str, ...] = ("reference", "markers")

logger = logging.getLogger("scagent")

#: Bump when the evidence a task produces changes meaning.
EVIDENCE_VERSION = 2


@dataclass
class TaskRun:
    """The experts' evidence on one task, with the truth."""

    name: str
    group: str
    evidence: Evidence
    truth: np.ndarray
    targets: np.ndarray
    tissue: str
    seconds: float
    extra: dict = field(default_factory=dict)


def targets_for(truth: np.ndarray, classes: list[str]) -> np.ndarray:
    """(cells, classes) bool: which classes count as right for each cell (scoring rules of
    :mod:`~scagent.bench._ontoscore`); all False for cells that are not scored."""
    out = np.zeros((len(truth), len(classes)), dtype=bool)
    for t in pd.unique(truth):
        if not t:
            continue
        ok = call_is_right([t] * len(classes), classes, classes)
        out[truth == t] = ok
    return out


def _key(task: Task, encoder, experts) -> str:
    q = task.query
    X = q.raw.X if q.raw is not None else q.X
    parts = [
        EVIDENCE_VERSION,
        RECIPE,
        task.name,
        _fingerprint(task.reference),
        list(q.obs_names[:5]),
        q.shape,
        float(X.sum()),
        getattr(encoder, "sha256", ""),
        list(experts),
    ]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:20]


def _save(path: Path, run: TaskRun) -> None:
    ev = run.evidence
    arrays = {
        "classes": np.asarray(ev.classes, dtype=str),
        "names": np.asarray(ev.names, dtype=str),
        "allowed": ev.allowed,
        "truth": run.truth.astype(str),
        "g_data": ev.graph.data,
        "g_indices": ev.graph.indices,
        "g_indptr": ev.graph.indptr,
    }
    for k, v in ev.probs.items():
        arrays[f"p_{k}"] = v
    for k, v in ev.cell_info.items():
        arrays[f"i_{k}"] = np.asarray(v)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path.with_suffix(".npz"))
    meta = {"tissue": run.tissue, "seconds": run.seconds, "extra": run.extra}
    path.with_suffix(".json").write_text(json.dumps(meta))


def _load(path: Path, task: Task) -> TaskRun | None:
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        z = np.load(path.with_suffix(".npz"), allow_pickle=False)
    except (OSError, ValueError):
        return None
    n = len(z["truth"])
    graph = sp.csr_matrix((z["g_data"], z["g_indices"], z["g_indptr"]), shape=(n, n))
    probs = {k[2:]: z[k] for k in z.files if k.startswith("p_")}
    info = {k[2:]: z[k] for k in z.files if k.startswith("i_")}
    classes = [str(c) for c in z["classes"]]
    ev = Evidence(classes, [str(c) for c in z["names"]], z["allowed"], probs, graph, info)
    truth = z["truth"].astype(object)
    return TaskRun(
        task.name,
        task.group,
        ev,
        truth,
        targets_for(truth, classes),
        meta["tissue"],
        meta["seconds"],
        meta.get("extra", {}),
    )


def run_experts(
    task: Task,
    *,
    encoder,
    cache_dir: Path,
    experts: tuple[str, ...] = BENCH_EXPERTS,
    train_config=None,
    seed: int = 0,
) -> TaskRun:
    """The experts' evidence on a task (computed, or read from ``cache_dir``)."""
    path = cache_dir / "evidence" / _key(task, encoder, experts)
    cached = _load(path, task)
    if cached is not None:
        return cached
    t0 = time.perf_counter()
    query = prepare(task.query, copy=True)
    plugins = None
    if "plugin" in experts:
        plugins = LazyRegistry(
            cache_dir / "plugins", task.reference, encoder, config=train_config, seed=seed
        )
    g = gather_evidence(
        query,
        reference=task.reference,
        plugins=plugins,
        model=encoder,
        experts=experts,
        progress=False,
        seed=seed,
    )
    truth = np.asarray(task.truth, dtype=object)
    run = TaskRun(
        task.name,
        task.group,
        g.evidence,
        truth,
        targets_for(truth, g.evidence.classes),
        g.tissue.tissue or g.tissue.how,
        round(time.perf_counter() - t0, 1),
        {"seconds": g.seconds, "notes": g.notes},
    )
    _save(path, run)
    return run


def _peer_data(task: Task) -> tuple[AnnData, AnnData, np.ndarray]:
    """Reference and query as peers get them: log1p(CP10k) of the genes the query shares
    with every training study, training cells of the query's tissue when it has one."""
    ref = task.reference
    if task.tissue is not None and (ref.obs["tissue"].astype(str) == task.tissue).any():
        ref = ref[(ref.obs["tissue"].astype(str) == task.tissue).to_numpy()]
    query = prepare(task.query, copy=True)
    measured = np.ones(ref.n_vars, dtype=bool)
    for d in ref.obs["dataset"].astype(str).unique():
        key = f"measured_in_{d}"
        if key in ref.var:
            measured &= ref.var[key].to_numpy()
    genes = [g for g in query.var_names if g in set(ref.var_names[measured])]
    train = ref.copy()
    prepare(train)
    train = AnnData(X=train.layers[LAYER_LOG1P], obs=train.obs, var=train.var[[]])[:, genes]
    test = AnnData(X=query.layers[LAYER_LOG1P], obs=query.obs[[]], var=query.var[[]])[:, genes]
    labels = train.obs["cell_type_ontology_term_id"].astype(str).to_numpy()
    return train.copy(), test.copy(), labels


def peer_predictions(
    task: Task, peers: list[Peer], *, cache_dir: Path
) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Each peer row's labels (Cell Ontology ids), confidences and seconds on a task."""
    key = hashlib.sha256(
        json.dumps(
            [task.name, _fingerprint(task.reference), [type(p).__name__ for p in peers]]
        ).encode()
    ).hexdigest()[:20]
    path = cache_dir / "peers" / f"{key}.npz"
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        return {
            name: (z[f"pred{i}"].astype(object), z[f"conf{i}"], meta[name])
            for i, name in enumerate(meta)
        }
    train, test, labels = _peer_data(task)
    out = {}
    for peer in peers:
        t0 = time.perf_counter()
        peer.fit(train, labels)
        fit_s = time.perf_counter() - t0
        for variant in peer.variants:
            t1 = time.perf_counter()
            pred, conf = peer.predict_scored(test, variant)
            out[peer.row_name(variant)] = (
                np.asarray(pred, dtype=object),
                np.asarray(conf, dtype=float),
                round(fit_s + time.perf_counter() - t1, 1),
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"meta": np.asarray(json.dumps({k: v[2] for k, v in out.items()}))}
    for i, (pred, conf, _) in enumerate(out.values()):
        arrays[f"pred{i}"] = pred.astype(str)
        arrays[f"conf{i}"] = conf
    np.savez_compressed(path, **arrays)
    return out
