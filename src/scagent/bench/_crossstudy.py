"""Cross-study and degraded-query benchmark: scagent, each expert alone, and the peers.

Every task annotates a query the reference never saw (see :mod:`~scagent.bench._tasks`).
scagent's fusion settings are learnt leave-one-group-out: a task is scored with settings
fitted on the other groups' tasks only (Kang control and stimulated cells form one group,
the four Baron donors one, the degraded queries one). The encoder is the benchmark encoder
pretrained on unlabelled data only (no test cell was ever seen), and plugins are trained per
task on that task's reference. Peers (CellTypist with and without majority voting, logistic
regression, kNN) are trained on log1p(CP10k) of the genes the query shares with every
training study, on the query's tissue when it has one: their strongest protocol.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from .._settings import settings
from ..datasets import reference_atlas
from ..experts import alone, fit_fusion, fuse
from ..experts._fusion import OPINIONS
from ..plugins import expected_calibration_error
from ._ontoscore import call_is_right, lineage, scorable
from ._peers import CellTypistPeer, KNNPCAPeer, LogRegPeer
from ._report import Section
from ._taskrun import TaskRun, peer_predictions, run_experts
from ._tasks import Task, cross_study_tasks, degraded_tasks

__all__ = ["SCAGENT", "crossstudy_suite", "fused_predictions", "metrics"]

logger = logging.getLogger("scagent")

SCAGENT = "scagent"
CONFIDENT = 0.8


def metrics(truth, pred, conf, classes) -> dict:
    """Accuracy, macro-F1, ECE and confidently-wrong rate on the scorable cells.

    ``classes`` are the reference's classes (they decide which cells can be scored).
    """
    truth = np.asarray(truth, dtype=object)
    pred = np.asarray(pred, dtype=object)
    conf = np.asarray(conf, dtype=float)
    labelled = truth != ""
    keep = labelled.copy()
    keep[labelled] = scorable(truth[labelled], classes)
    t, p, c = truth[keep], pred[keep], conf[keep]
    right = call_is_right(t, p, classes)
    eff = np.where(right, t, p).astype(str)
    out = {
        "n": int(keep.sum()),
        "coverage": float(keep.sum() / max(labelled.sum(), 1)),
        "accuracy": float(right.mean()) if len(t) else float("nan"),
        "macro_f1": float(
            f1_score(t.astype(str), eff, labels=np.unique(t.astype(str)), average="macro")
        )
        if len(t)
        else float("nan"),
        "lineage_accuracy": float(np.mean([lineage(a) == lineage(b) for a, b in zip(t, p)]))
        if len(t)
        else float("nan"),
    }
    if np.isfinite(c).all() and len(c):
        out["ece"] = expected_calibration_error(c, right)
        out["confidently_wrong"] = float(((c > CONFIDENT) & ~right).mean())
    else:
        out["ece"] = out["confidently_wrong"] = float("nan")
    return out


def fused_predictions(runs: list[TaskRun]) -> dict[str, dict[str, tuple]]:
    """Per task: scagent and each expert alone, with fusion settings learnt without the
    task's group. Returns ``{task: {method: (pred ids, confidence)}}``."""
    out: dict[str, dict[str, tuple]] = {}
    for group in sorted({r.group for r in runs}):
        train = [(r.evidence, r.targets) for r in runs if r.group != group]
        params = fit_fusion(train, provenance={"held_out_group": group})
        for r in (r for r in runs if r.group == group):
            ev = r.evidence
            classes = np.asarray(ev.classes, dtype=object)
            fused = fuse(ev, params)
            rows = {SCAGENT: (classes[fused.call], fused.confidence)}
            for name in OPINIONS:
                Pe = alone(ev, name, params.temperatures.get(name, 1.0))
                if Pe is None:
                    continue
                valid = ~np.isnan(Pe).any(axis=1)
                best = np.nan_to_num(Pe, nan=-1).argmax(axis=1)
                pred = np.where(valid, classes[best], "")
                conf = np.where(valid, np.nan_to_num(Pe)[np.arange(len(best)), best], 0.0)
                rows[f"{name} expert alone"] = (pred, conf)
            rows["_params"] = params
            out[r.name] = rows
    return out


def _bench_encoder():
    from ..models import load_encoder
    from ._encoder_data import bench_encoder_path

    path = bench_encoder_path()
    if path is None:
        logger.warning("No benchmark encoder found; using the default one (it saw test cells).")
        return load_encoder("default"), "default encoder (pretrained on every shared file)"
    return load_encoder(path), "benchmark encoder (pretrained on unlabelled data only)"


def crossstudy_suite(
    *, seed: int = 0, quick: bool = False, cache_dir: Path | None = None
) -> Section:
    """Run the cross-study and degraded-query benchmark (module docstring)."""
    atlas = reference_atlas()
    tasks: list[Task] = cross_study_tasks(atlas, quick=quick) + degraded_tasks(
        atlas, seed=seed, quick=quick
    )
    cache_dir = cache_dir or settings.data_dir / "bench_cache"
    encoder, encoder_note = _bench_encoder()
    runs = []
    for task in tasks:
        logger.info("Cross-study task %s", task.name)
        runs.append(run_experts(task, encoder=encoder, cache_dir=cache_dir, seed=seed))
    fused = fused_predictions(runs)
    peers = [CellTypistPeer(seed=seed), LogRegPeer(seed=seed), KNNPCAPeer(seed=seed)]
    section = Section(
        "Cross-study annotation",
        "Every query is a study (or donor) held out of the reference, or held-out atlas cells "
        "handed over degraded. Scored through the Cell Ontology: a call is right when it is "
        "the true term or below it, or (when the reference lacks the true term) its nearest "
        "reference ancestor; cells no reference class can name are left out ('coverage'). "
        f"Encoder: {encoder_note}.",
    )
    for task, run in zip(tasks, runs):
        classes = run.evidence.classes
        rows = dict(fused[task.name])
        rows.pop("_params")
        preds = {**rows}
        for name, (pred, conf, _) in peer_predictions(task, peers, cache_dir=cache_dir).items():
            preds[name] = (pred, conf)
        for method, (pred, conf) in preds.items():
            row = {"task": task.name, "kind": task.kind, "method": method}
            row.update(metrics(task.truth, pred, conf, classes))
            row["tissue decided"] = run.tissue if method == SCAGENT else ""
            section.rows.append(row)
    _summaries(section)
    section.notes += [
        "Fusion settings: learnt leave-one-group-out on the other tasks' evidence "
        "(scripts/fit_fusion.py learns the shipped ones on all of them).",
        f"ECE: 15 equal-width bins; confidently wrong: confidence > {CONFIDENT} and wrong. "
        "Peers' confidence: CellTypist's probability of its label, the classifier's "
        "probability (logistic regression), the share of neighbours (kNN).",
    ]
    return section


def _summaries(section: Section) -> None:
    """Mean per method over the cross-study tasks and over the degraded ones."""
    for kind in ("cross-study", "degraded", "in-atlas"):
        rows = [r for r in section.rows if r["kind"] == kind]
        methods = list(dict.fromkeys(r["method"] for r in rows))
        table = []
        for m in methods:
            mine = [r for r in rows if r["method"] == m]
            table.append(
                {
                    "method": m,
                    "tasks": len(mine),
                    **{
                        k: float(np.nanmean([r[k] for r in mine]))
                        for k in ("accuracy", "macro_f1", "ece", "confidently_wrong")
                    },
                }
            )
        table.sort(key=lambda r: -r["accuracy"])
        section.extra_tables.append((f"Mean over the {kind} tasks", table))
