"""Training one plugin: MoE-LoRA adapter + slot head on a frozen encoder."""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData
from sklearn.metrics import f1_score
from tqdm.auto import tqdm

from .._errors import InputDataError
from .._settings import settings
from ..knowledge import cell_ontology
from ..models import Encoder, TokenBatch, load_encoder, model_input
from ..nn import (
    MoELoRAConfig,
    SlotHead,
    adapter_state_dict,
    add_adapter,
    load_adapter_state,
    remove_adapter,
)
from ._calibrate import expected_calibration_error, fit_temperature
from ._host import host_for
from ._plugin import Plugin

__all__ = ["TrainConfig", "train_plugin"]

logger = logging.getLogger("scagent")


@dataclass
class TrainConfig:
    """Optimisation settings of plugin training.

    Training runs in two stages (linear probing, then fine-tuning: "LP-FT", Kumar et al.
    2022): the head is first fitted on the frozen encoder's embeddings, computed once;
    then adapter and head are fine-tuned together. Starting the fine-tuning from a fitted
    head keeps the adapter from being pulled around by a random head, and the probe state
    competes in early stopping, so fine-tuning is only kept where it helps.

    Attributes
    ----------
    probe_epochs
        Upper bound on head-only epochs over the cached embeddings.
    probe_lr
        Adam learning rate of the head-only stage.
    max_epochs
        Upper bound on fine-tuning epochs (early stopping usually ends sooner).
    batch_size
        Cells per step.
    lr
        Adam learning rate at the start of the fine-tuning's cosine decay.
    weight_decay
        L2 penalty on adapter and head weights.
    val_fraction
        Share of each class (of 5 or more cells) held out for early stopping and
        calibration.
    patience
        Fine-tuning epochs without a better validation loss before stopping.
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
        every training cell besides the full one.
    gene_fraction
        Range of the share of genes kept in such a batch (drawn log-uniformly).
    """

    probe_epochs: int = 300
    probe_lr: float = 3e-3
    max_epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.15
    patience: int = 5
    balance: float = 0.5
    samples_per_epoch: int = 1024
    min_steps_per_epoch: int = 5
    gene_dropout: float = 0.5
    gene_fraction: tuple[float, float] = (0.02, 0.5)


def _split(y: np.ndarray, fraction: float, rng: np.random.Generator):
    """Stratified train/validation positions; classes under 5 cells stay in training."""
    train, val = [], []
    for c in np.unique(y):
        pos = rng.permutation(np.flatnonzero(y == c))
        n_val = max(1, round(fraction * len(pos))) if len(pos) >= 5 and fraction > 0 else 0
        val.extend(pos[:n_val])
        train.extend(pos[n_val:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(val, dtype=int))


def _ontology_ids(adata: AnnData, label_key: str, labels: list[str], ontology_key: str | None):
    if ontology_key and ontology_key in adata.obs:
        pairs = adata.obs[[label_key, ontology_key]].astype(str)
        mode = pairs.groupby(label_key)[ontology_key].agg(lambda s: s.value_counts().index[0])
        return [str(mode.get(lab, "")) for lab in labels]
    onto = cell_ontology()
    return [onto.find(lab) or "" for lab in labels]


def _logits(model, head, batch: TokenBatch, device: str, chunk: int = 256):
    out, embs = [], []
    for s in range(0, len(batch.genes), chunk):
        b = batch.take(slice(s, s + chunk))
        cls = model.cell_embedding(b.genes.to(device), b.values.to(device), b.padding.to(device))
        embs.append(cls)
        out.append(head(cls))
    return torch.cat(out), torch.cat(embs)


def _val_loss(net, head, tokens: TokenBatch, y: torch.Tensor, device: str) -> float:
    if len(y) == 0:
        return math.nan
    with torch.no_grad():
        logits, _ = _logits(net, head, tokens, device)
        return float(torch.nn.functional.cross_entropy(logits, y.to(device)))


def _variable_order(X, ids: np.ndarray) -> np.ndarray:
    """Vocabulary genes (columns) ordered from most to least variable (dispersion of log data)."""
    known = np.flatnonzero(ids >= 0)
    sub = X[:, known]
    mean = np.asarray(sub.mean(axis=0)).ravel()
    sq = sub.multiply(sub) if sp.issparse(sub) else sub * sub
    var = np.asarray(sq.mean(axis=0)).ravel() - mean**2
    disp = np.where(mean > 0, var / np.maximum(mean, 1e-12), -np.inf)
    return known[np.argsort(-disp, kind="stable")]


def _gene_subset(
    ids: np.ndarray, cfg: TrainConfig, rng: np.random.Generator, order: np.ndarray | None = None
) -> np.ndarray:
    """Vocabulary ids with all but a subset of the genes hidden (-1).

    Half of the time (when ``order`` is given) the subset is the most variable genes, as in
    files cut to highly variable genes; otherwise a random share of all genes, as in
    targeted panels and shallow data.
    """
    lo, hi = np.log(cfg.gene_fraction[0]), np.log(cfg.gene_fraction[1])
    share = np.exp(rng.uniform(lo, hi))
    if order is not None and len(order) and rng.random() < 0.5:
        keep = np.zeros(len(ids), dtype=bool)
        keep[order[: max(1, int(share * len(order)))]] = True
    else:
        keep = rng.random(len(ids)) < share
    return np.where(keep, ids, -1)


def _subset_views(net, head, host, X, ids, rows, max_len, cfg, rng, device, order, chunk=128):
    """Frozen embeddings of ``rows`` tokenised from gene subsets (one per chunk)."""
    out = []
    with torch.no_grad():
        for s in range(0, len(rows), chunk):
            part = rows[s : s + chunk]
            tokens, _ = host.tokens(X[part], _gene_subset(ids, cfg, rng, order), max_len)
            out.append(_logits(net, head, tokens, device)[1])
    return torch.cat(out)


def _probe(head, emb, y, train, val, weights, cfg: TrainConfig, rng, device) -> float:
    """Fit the head alone on cached frozen embeddings; early-stopped on validation loss.

    Inputs are standardised with the training cells' statistics first. Returns the
    validation loss of the kept state (``nan`` without validation cells).
    """
    emb = emb.detach()
    y = y.to(device)
    head.standardise_with(emb[torch.as_tensor(train)])
    opt = torch.optim.Adam(head.parameters(), lr=cfg.probe_lr, weight_decay=cfg.weight_decay)
    batch = max(1, min(cfg.batch_size, len(train)))
    steps = max(1, math.ceil(len(train) / batch))
    best = (math.inf, copy.deepcopy(head.state_dict()), 0)
    patience = 10
    for epoch in range(cfg.probe_epochs):
        head.train()
        for _ in range(steps):
            idx = torch.as_tensor(train[rng.choice(len(train), size=batch, p=weights)])
            loss = torch.nn.functional.cross_entropy(head(emb[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if len(val) == 0:
            continue
        head.eval()
        with torch.no_grad():
            v = float(torch.nn.functional.cross_entropy(head(emb[val]), y[val]))
        if v < best[0]:
            best = (v, copy.deepcopy(head.state_dict()), epoch)
        elif epoch - best[2] >= patience:
            break
    head.eval()
    if len(val) == 0:
        return math.nan
    head.load_state_dict(best[1])
    return best[0]


def _calibrate(logits: torch.Tensor, y: np.ndarray) -> tuple[float, dict]:
    """Fit the temperature on validation logits; accuracy, macro-F1 and ECE there."""
    z = logits.float().cpu().numpy()
    temperature = fit_temperature(z, y)
    p = torch.softmax(torch.as_tensor(z) / temperature, dim=-1).numpy()
    raw = torch.softmax(torch.as_tensor(z), dim=-1).numpy()
    pred = p.argmax(1)
    return temperature, {
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "ece": expected_calibration_error(p.max(1), pred == y),
        "ece_uncalibrated": expected_calibration_error(raw.max(1), pred == y),
        "temperature": temperature,
    }


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
    sampling, early stopping on a stratified validation split (best state kept), then a
    softmax temperature fitted on that split calibrates the confidences.

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
    The trained plugin (not yet saved: use :meth:`PluginRegistry.save`).
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
    host = host_for(encoder)
    max_len = max_len or encoder.max_len
    tokens, _ = host.tokens(X, ids, max_len)
    order = _variable_order(X, ids) if cfg.gene_dropout > 0 else None

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    train, val = _split(y, cfg.val_fraction, rng)
    counts = np.bincount(y[train], minlength=len(labels)).astype(float)
    weights = counts[y[train]] ** -cfg.balance
    weights /= weights.sum()
    batch = max(1, min(cfg.batch_size, len(train)))
    steps = max(cfg.min_steps_per_epoch, math.ceil(min(len(train), cfg.samples_per_epoch) / batch))

    net = encoder.model.to(device).eval()
    key = f"_training_{name}"
    params = add_adapter(net, key, lora)
    for p in net.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    head = SlotHead(encoder.dim, len(labels), n_hidden=head_hidden).to(device)
    adapters = [m for n, m in net.named_modules() if n.endswith(f"adapters.{key}")]
    y_t = torch.as_tensor(y)
    val_tokens, y_val = tokens.take(val), y_t[val]
    history: list[dict] = []
    try:
        host.use(key)  # B = 0: the adapted encoder starts as the frozen one
        with torch.no_grad():
            _, frozen = _logits(net, head, tokens, device)
        p_emb, p_y, p_train, p_w = frozen, y_t, train, weights
        if cfg.gene_dropout > 0:  # one gene-subset view of every training cell as well
            views = _subset_views(net, head, host, X, ids, train, max_len, cfg, rng, device, order)
            p_emb = torch.cat([frozen, views])
            p_y = torch.cat([y_t, y_t[train]])
            p_train = np.concatenate([train, len(y) + np.arange(len(train))])
            p_w = np.concatenate([weights, weights]) / 2
        probe_loss = _probe(head, p_emb, p_y, p_train, val, p_w, cfg, rng, device)
        history.append({"epoch": 0, "stage": "probe", "val_loss": probe_loss})

        def snapshot() -> dict:
            return {
                **{f"lora.{k}": v for k, v in adapter_state_dict(net, key).items()},
                **{f"head.{k}": v.detach().cpu().clone() for k, v in head.state_dict().items()},
            }

        best = (probe_loss if len(val) else math.inf, snapshot(), 0)
        opt = torch.optim.Adam(  # the fitted head moves slowly; the adapter learns
            [{"params": params}, {"params": head.parameters(), "lr": cfg.lr * 0.1}],
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
        )
        total_steps = max(1, cfg.max_epochs * steps)
        sched = torch.optim.lr_scheduler.LambdaLR(  # one epoch of warm-up, then cosine decay
            opt,
            lambda s: (
                min(1.0, (s + 1) / steps)
                * 0.5
                * (1 + math.cos(math.pi * min(s / total_steps, 1.0)))
            ),
        )
        bar = tqdm(range(cfg.max_epochs), disable=not progress, desc=f"training {name}")
        for epoch in bar:
            for m in adapters:
                m.train()
            head.train()
            total = 0.0
            for _ in range(steps):
                idx = train[rng.choice(len(train), size=batch, p=weights)]
                if rng.random() < cfg.gene_dropout:
                    b = host.tokens(X[idx], _gene_subset(ids, cfg, rng, order), max_len)[0]
                else:
                    b = tokens.take(idx)
                cls = net.cell_embedding(
                    b.genes.to(device), b.values.to(device), b.padding.to(device)
                )
                loss = torch.nn.functional.cross_entropy(head(cls), y_t[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach())
            for m in adapters:
                m.eval()
            head.eval()
            val_loss = _val_loss(net, head, val_tokens, y_val, device)
            history.append(
                {
                    "epoch": epoch + 1,
                    "stage": "fine-tune",
                    "train_loss": total / steps,
                    "val_loss": val_loss,
                }
            )
            bar.set_postfix(train=f"{total / steps:.3f}", val=f"{val_loss:.3f}")
            score = val_loss if len(val) else -epoch  # no validation: keep the last epoch
            if score < best[0]:
                best = (score, snapshot(), epoch + 1)
            elif epoch + 1 - best[2] >= cfg.patience:
                break
        load_adapter_state(net, key, {k[5:]: v for k, v in best[1].items() if k[:5] == "lora."})
        head.load_state_dict({k[5:]: v for k, v in best[1].items() if k[:5] == "head."})
        metrics = {"epochs_run": len(history) - 1, "best_epoch": best[2], "n_val": len(val)}
        metrics["probe_val_loss"] = probe_loss
        temperature = 1.0
        if len(val):
            with torch.no_grad():
                logits, _ = _logits(net, head, val_tokens, device)
            temperature, scored = _calibrate(logits[:, : len(labels)], y_val.numpy())
            metrics.update(scored)
    finally:
        remove_adapter(net, key)
        for p in net.parameters():
            p.requires_grad_(False)
    seconds = time.perf_counter() - t0
    obs = adata.obs
    training = {
        "n_cells": int(adata.n_obs),
        "n_train": len(train),
        "n_val": len(val),
        "label_key": label_key,
        "cells_per_class": {lab: int(n) for lab, n in zip(labels, np.bincount(y))},
        "datasets": sorted(obs["dataset"].astype(str).unique()) if "dataset" in obs else [],
        "seed": seed,
        "device": device,
        "seconds": round(seconds, 1),
        "config": vars(cfg),
        "history": history,
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
        state=best[1],
        temperature=temperature,
        training=training,
        metrics=metrics,
    )
