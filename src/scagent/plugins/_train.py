"""Training one plugin: MoE-LoRA adapter + slot head on a frozen encoder."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._errors import InputDataError
from .._settings import settings
from ..knowledge import cell_ontology
from ..models import Encoder, load_encoder, model_input
from ..nn import MoELoRAConfig
from ._fit import PluginFit
from ._plugin import Plugin

__all__ = ["Split", "TrainConfig", "split_cells", "train_plugin"]

#: Classes with fewer cells than this are not held out (all their cells train).
MIN_HELD_OUT_CLASS = 5


@dataclass
class TrainConfig:
    """Optimisation settings of plugin training.

    Training runs in two stages (linear probing, then fine-tuning: "LP-FT", Kumar et al.
    2022): the head is first fitted on the frozen encoder's embeddings, computed once;
    then adapter and head are fine-tuned together from there. Held-out cells are split in
    two disjoint halves: one for early stopping (and for checking that fine-tuning did
    not make the plugin worse than the probe), one for the temperature and the reported
    metrics.

    Attributes
    ----------
    probe_epochs
        Upper bound on head-only epochs over the cached embeddings.
    probe_lr
        Adam learning rate of the head-only stage.
    max_epochs
        Upper bound on fine-tuning epochs (early stopping usually ends sooner); 0 ends
        training at the probe.
    batch_size
        Cells per step.
    lr
        Adam learning rate of the adapter at the start of the cosine decay.
    head_lr
        Learning rate of the (already fitted) head during fine-tuning, relative to ``lr``.
    weight_decay
        L2 penalty on adapter and head weights.
    val_fraction
        Share of each class (of 5 or more cells) held out from training: half of it for
        early stopping, half for calibration and the reported metrics (0: none held out,
        no early stopping, no temperature).
    max_val_cells
        Upper bound on the cells of each held-out half (the rest of a large class trains).
    patience
        Fine-tuning epochs without a better early-stopping loss before stopping.
    tolerance
        Early-stopping loss (nats per cell) by which the fine-tuned plugin may exceed the
        probe before the probe is kept instead (it must also exceed it by two standard
        errors of the per-cell differences).
    min_finetune_cells
        Fewer training cells than this: the plugin ends at the probe (no adapter).
    balance
        Class-balanced sampling: cells are drawn with probability proportional to
        ``count(class) ** -balance`` (0: as in the data, 1: every class equally often).
    samples_per_epoch
        Cells drawn per fine-tuning epoch (at most; fewer for small datasets).
    min_steps_per_epoch
        Lower bound on steps per epoch, so tiny datasets still train.
    gene_dropout
        Share of training batches tokenised from a random subset of the genes, so that
        plugins also work on data that measured few genes (targeted panels, files cut to
        variable genes): the tokens such a cell gets are lower-ranked genes that a full
        transcriptome would have pushed out. The head-only stage sees one such view of
        every training cell besides the full one, and early stopping weighs the two views
        of its cells in the same proportion.
    gene_fraction
        Range of the share of genes kept in such a batch (drawn log-uniformly).
    calibration_folds
        Folds of the cross-fitting that checks the temperature on cells it was not
        fitted on.
    temperature_prior_sd
        Standard deviation of the log-normal prior that pulls the temperature towards 1.
    """

    probe_epochs: int = 300
    probe_lr: float = 3e-3
    max_epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    head_lr: float = 0.1
    weight_decay: float = 1e-4
    val_fraction: float = 0.3
    max_val_cells: int = 500
    patience: int = 5
    tolerance: float = 0.02
    min_finetune_cells: int = 20
    balance: float = 0.5
    samples_per_epoch: int = 1024
    min_steps_per_epoch: int = 5
    gene_dropout: float = 0.5
    gene_fraction: tuple[float, float] = (0.02, 0.5)
    calibration_folds: int = 5
    temperature_prior_sd: float = 0.5


class Split(NamedTuple):
    """Disjoint cell positions: training, early stopping, calibration (sorted)."""

    train: np.ndarray
    stop: np.ndarray
    calibration: np.ndarray


def split_cells(
    y: np.ndarray, fraction: float, rng: np.random.Generator, *, max_cells: int | None = None
) -> Split:
    """Stratified, disjoint training / early-stopping / calibration positions.

    Each class of :data:`MIN_HELD_OUT_CLASS` or more cells gives ``fraction`` of its cells
    (at least 2) to the held-out sets, alternately to early stopping and calibration;
    smaller classes stay in training. ``max_cells`` caps each held-out set: the largest
    classes give up cells first (to training) until it fits, so rare classes keep theirs.
    """
    y = np.asarray(y)
    stop, cal = {}, {}
    rest = []
    for c in np.unique(y):
        pos = rng.permutation(np.flatnonzero(y == c))
        n = len(pos)
        n_out = min(n - 1, max(2, round(fraction * n))) if n >= MIN_HELD_OUT_CLASS else 0
        if fraction <= 0:
            n_out = 0
        stop[c], cal[c] = pos[:n_out:2], pos[1:n_out:2]
        rest.append(pos[n_out:])
    for part in (stop, cal):
        sizes = np.array([len(v) for v in part.values()])
        if max_cells is None or sizes.sum() <= max_cells:
            continue
        # water-filling: the largest classes give up cells first, small ones keep theirs
        cap = 1
        while np.minimum(sizes, cap + 1).sum() <= max_cells:
            cap += 1
        for c, v in part.items():
            rest.append(v[cap:])
            part[c] = v[:cap]

    def cat(parts) -> np.ndarray:
        return np.sort(np.concatenate([np.zeros(0, dtype=int), *parts]).astype(int))

    return Split(cat(rest), cat(stop.values()), cat(cal.values()))


def _ontology_ids(adata: AnnData, label_key: str, labels: list[str], ontology_key: str | None):
    if ontology_key and ontology_key in adata.obs:
        pairs = adata.obs[[label_key, ontology_key]].astype(str)
        mode = pairs.groupby(label_key)[ontology_key].agg(lambda s: s.value_counts().index[0])
        return [str(mode.get(lab, "")) for lab in labels]
    onto = cell_ontology()
    return [onto.find(lab) or "" for lab in labels]


def _counts(y: np.ndarray, labels: list[str]) -> dict[str, int]:
    return {lab: int(n) for lab, n in zip(labels, np.bincount(y, minlength=len(labels))) if n}


def train_plugin(
    adata: AnnData,
    *,
    label_key: str,
    kind: str = "cell_type",
    name: str | None = None,
    tissue: str | None = None,
    model: str | os.PathLike | Encoder = "default",
    ontology_key: str | None = "cell_type_ontology_term_id",
    lora: MoELoRAConfig | None = None,
    head_hidden: int = 2,
    max_len: int | None = None,
    config: TrainConfig | None = None,
    seed: int | None = None,
    device: str | None = None,
    progress: bool | None = None,
) -> Plugin:
    """Train a MoE-LoRA plugin and its 200-slot head on labelled cells.

    The encoder's own weights stay frozen; only the adapter (experts, gates) and the head
    learn: first the head alone on the frozen embeddings, then both together (see
    :class:`TrainConfig`). Cross-entropy, Adam, cosine learning-rate decay, class-balanced
    sampling, gene-subset augmentation. A stratified share of the cells is held out and
    split in two disjoint halves: early stopping keeps the fine-tuning epoch with the
    lowest loss on the first half; the probe is kept instead only where that epoch is
    clearly worse than the probe on the same cells (:attr:`TrainConfig.tolerance`). On the
    second half a softmax temperature is fitted and checked by cross-fitting (it is only
    used where it lowers the held-out ECE), and the reported metrics are measured.

    Parameters
    ----------
    adata
        Labelled cells (counts or log-normalised; see :func:`scagent.pp.prepare`).
    label_key
        ``.obs`` column with the classes (cell types, or tissues for tissue assignment).
    kind
        ``"cell_type"`` or ``"tissue_assignment"``.
    name
        Registry name (default: ``tissue``, or ``"tissue"`` for tissue assignment).
    tissue
        Tissue covered by a cell-type plugin.
    model
        Encoder name, folder or loaded :class:`~scagent.models.Encoder`.
    ontology_key
        ``.obs`` column of Cell Ontology ids per cell (else ids are looked up by name).
    lora
        Adapter shape (default: 5 experts of rank 8 on Q and V).
    head_hidden
        Hidden blocks of the head.
    max_len
        Tokens per cell (``<cls>`` included), default the encoder's. Fewer tokens make a
        plugin cheaper (the tissue-assignment plugin reads 64).
    config
        Optimisation settings.
    seed
        Random seed (default ``sa.settings.seed``).
    device
        Torch device (default ``sa.settings.device``).
    progress
        Show a progress bar.

    Returns
    -------
    The trained plugin (not yet saved: use :meth:`PluginRegistry.save`). Its ``metrics``
    hold ``adapter_trained`` (``False`` where training ended at the probe, with the reason
    in ``adapter_note``), ``best_epoch``, the early-stopping losses of probe and kept
    state, ``temperature_note``, and, measured on the calibration cells (never trained or
    early-stopped on), ``accuracy``, ``macro_f1``, ``ece`` / ``ece_uncalibrated`` and
    ``per_class`` metrics; ``training['split']`` gives the cells of each part per class.
    """
    cfg = config or TrainConfig()
    lora = lora or MoELoRAConfig()
    seed = settings.seed if seed is None else seed
    device = device or settings.resolved_device()
    progress = settings.progress if progress is None else progress
    if kind == "cell_type" and not (tissue or name):
        msg = "A cell-type plugin needs `tissue=` (or `name=`)."
        raise ValueError(msg)
    name = name or ("tissue" if kind == "tissue_assignment" else str(tissue))
    if label_key not in adata.obs:
        msg = f"adata.obs has no column {label_key!r}; columns: {list(adata.obs.columns)}."
        raise InputDataError(msg)
    y_raw = adata.obs[label_key]
    if y_raw.isna().any():
        msg = f"{int(y_raw.isna().sum())} cells have no {label_key!r}; drop or label them."
        raise InputDataError(msg)
    labels = sorted(y_raw.astype(str).unique())
    y = pd.Categorical(y_raw.astype(str), categories=labels).codes.astype(np.int64)
    encoder = model if isinstance(model, Encoder) else load_encoder(model)
    X, ids, _ = model_input(adata, encoder)
    if sp.issparse(X):
        X = sp.csr_matrix(X)
    t0 = time.perf_counter()
    max_len = max_len or encoder.max_len
    fit = PluginFit(
        encoder,
        X,
        ids,
        y,
        labels,
        cfg=cfg,
        lora=lora,
        head_hidden=head_hidden,
        max_len=max_len,
        name=name,
        seed=seed,
        device=device,
        progress=progress,
    )
    split = split_cells(y, cfg.val_fraction, fit.rng, max_cells=cfg.max_val_cells)
    out = fit.run(*split)
    obs = adata.obs
    training = {
        "n_cells": int(adata.n_obs),
        "n_train": len(split.train),
        "n_val": len(split.stop),
        "n_calibration": len(split.calibration),
        "split": {
            "train": _counts(y[split.train], labels),
            "early_stopping": _counts(y[split.stop], labels),
            "calibration": _counts(y[split.calibration], labels),
        },
        "label_key": label_key,
        "cells_per_class": {lab: int(n) for lab, n in zip(labels, np.bincount(y))},
        "datasets": sorted(obs["dataset"].astype(str).unique()) if "dataset" in obs else [],
        "seed": seed,
        "device": device,
        "seconds": round(time.perf_counter() - t0, 1),
        "config": vars(cfg),
        "history": out.history,
    }
    return Plugin(
        name=name,
        kind=kind,
        tissue=None if kind == "tissue_assignment" else (tissue or name),
        labels=labels,
        ontology_ids=_ontology_ids(adata, label_key, labels, ontology_key)
        if kind == "cell_type"
        else [""] * len(labels),
        lora=lora,
        head_hidden=head_hidden,
        max_len=max_len,
        base_model=encoder.name,
        base_sha256=encoder.sha256,
        state=out.state,
        temperature=out.temperature,
        training=training,
        metrics=out.metrics,
    )
