"""Self-supervised pretraining of the encoder: masked expression prediction (scGPT's GEP)."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp
import torch
from anndata import AnnData
from tqdm.auto import tqdm

from .._constants import LAYER_LOG1P
from .._settings import settings
from ..io import read
from ..nn import EncoderConfig, TransformerModel
from ..pp import prepare
from ._checkpoint import CONFIG, WEIGHTS, save_checkpoint
from ._tokenize import tokenize
from ._vocab import GeneVocab

__all__ = ["PretrainConfig", "build_corpus", "pretrain"]

logger = logging.getLogger("scagent")

STATE = "train_state.pt"


@dataclass
class PretrainConfig:
    """Model size and training schedule of :func:`pretrain`.

    Parameters
    ----------
    d_model, nhead, d_hid, nlayers, dropout
        Encoder size (see :class:`~scagent.nn.EncoderConfig`).
    max_len
        Tokens per cell, ``<cls>`` included.
    n_bins
        Expression bins.
    min_cells_per_gene
        A gene enters the vocabulary if it is expressed in at least this many cells.
    epochs, batch_size, lr, weight_decay, warmup_fraction
        AdamW with linear warm-up then cosine decay.
    mask_ratio
        Share of each cell's gene tokens whose value is hidden and predicted.
    mvc
        Also predict the hidden values from the ``<cls>`` embedding alone (scGPT's GEPC);
        without it the cell embedding is not trained directly.
    n_negative
        Genes per cell, absent from it, whose value 0 the cell embedding must predict.
    val_fraction
        Share of cells held out for the validation loss.
    seed
        Seed of initialisation, split, shuffling and masks.
    """

    d_model: int = 128
    nhead: int = 4
    d_hid: int = 256
    nlayers: int = 4
    dropout: float = 0.1
    max_len: int = 128
    n_bins: int = 51
    min_cells_per_gene: int = 5
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    mask_ratio: float = 0.4
    mvc: bool = True
    n_negative: int = 64
    val_fraction: float = 0.05
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> PretrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def build_corpus(paths: list[str | os.PathLike]) -> AnnData:
    """Read files into one corpus of log1p(CP10k) values (union of genes).

    Rows whose ``obs['species']`` is set to anything but ``"human"`` are dropped.

    Parameters
    ----------
    paths
        Files in any format :func:`scagent.read` takes.

    Returns
    -------
    Cells x genes with the canonical values in ``X`` and the source file in
    ``obs['source']``.
    """
    parts = []
    for path in paths:
        adata = read(path, make_unique=True)
        if "species" in adata.obs and (adata.obs["species"].astype(str) != "human").any():
            adata = adata[adata.obs["species"].astype(str) == "human"].copy()
        prepare(adata)
        part = AnnData(X=sp.csr_matrix(adata.layers[LAYER_LOG1P]), var=adata.var[[]])
        part.obs_names = [f"{Path(path).name}:{c}" for c in adata.obs_names]
        part.obs["source"] = Path(path).name
        parts.append(part)
        logger.info("corpus: %s, %d cells", Path(path).name, part.n_obs)
    return ad.concat(parts, join="outer", fill_value=0)


def _mask(values: torch.Tensor, padding: torch.Tensor, ratio: float, mask_value: float, gen):
    """Hide ``ratio`` of the gene positions (never ``<cls>`` or padding)."""
    candidates = ~padding
    candidates[:, 0] = False
    masked = (torch.rand(values.shape, generator=gen) < ratio) & candidates
    return torch.where(masked, torch.full_like(values, mask_value), values), masked


def _scale(model) -> float:
    """Targets are bins divided by the top bin (0..1), which keeps gradients in a sane range."""
    return float(model.cfg.n_bins - 1)


def _mvc_errors(model, out, genes, values, masked, neg_probs, n_negative, gen):
    """Squared errors of the cell-embedding decoder: hidden values and absent genes.

    Besides the hidden values of the cell's own genes, ``n_negative`` genes drawn by how
    often they are expressed in the corpus, but not expressed in this cell, must be
    predicted as 0: the cell embedding has to say which programmes are off, too.
    """
    err = (out["mvc_pred"][masked] - values[masked] / _scale(model)) ** 2
    if n_negative == 0:
        return err
    neg = torch.multinomial(neg_probs, genes.shape[0] * n_negative, replacement=True, generator=gen)
    neg = neg.view(genes.shape[0], n_negative)
    absent = ~(neg[:, :, None] == genes[:, None, :]).any(-1)
    pred = model.mvc_decoder(out["cell_emb"], model.encoder(neg))
    return torch.cat([err, pred[absent] ** 2])


def _loss(model, genes, values, padding, cfg, gen, neg_probs) -> torch.Tensor:
    """Masked-value MSE of the token decoder, plus that of the cell-embedding decoder (MVC)."""
    inp, masked = _mask(values, padding, cfg.mask_ratio, model.cfg.mask_value, gen)
    out = model(genes, inp, padding)
    loss = torch.nn.functional.mse_loss(out["pred"][masked], values[masked] / _scale(model))
    if "mvc_pred" in out:
        loss = (
            loss
            + _mvc_errors(model, out, genes, values, masked, neg_probs, cfg.n_negative, gen).mean()
        )
    return loss


def _lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return f


def pretrain(
    corpus: AnnData,
    out: str | os.PathLike,
    *,
    config: PretrainConfig | None = None,
    resume: bool = True,
    stop_after: int | None = None,
    progress: bool | None = None,
) -> dict:
    """Pretrain an encoder on a corpus and save it (safetensors + JSON) after every epoch.

    Parameters
    ----------
    corpus
        Cells x genes with log1p(CP10k) in ``X`` (see :func:`build_corpus`).
    out
        Checkpoint folder; written atomically after each epoch.
    config
        Model size and schedule.
    resume
        Continue from the last finished epoch in ``out`` when its config and corpus match;
        the result is the same as an uninterrupted run.
    stop_after
        Train at most this many epochs in this call (the rest can be resumed later).
    progress
        Show a progress bar (default ``sa.settings.progress``).

    Returns
    -------
    The training record saved in ``config.json``: data summary, config, per-epoch losses.
    """
    cfg = config or PretrainConfig()
    out = Path(out)
    progress = settings.progress if progress is None else progress
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    X = sp.csr_matrix(corpus.X)
    expressed = np.asarray((X > 0).sum(axis=0)).ravel()
    vocab = GeneVocab.from_genes(corpus.var_names[expressed >= cfg.min_cells_per_gene])
    batch, lengths = tokenize(
        X,
        vocab.ids(corpus.var_names),
        max_len=cfg.max_len,
        n_bins=cfg.n_bins,
        cls_id=vocab.cls_id,
        pad_id=vocab.pad_id,
        pad_value=-2.0,
    )
    # how often each token occurs: the draw of absent genes for the cell-embedding loss
    counts = torch.bincount(batch.genes[~batch.padding].flatten(), minlength=len(vocab))
    counts[[vocab.pad_id, vocab.cls_id]] = 0
    neg_probs = counts.double() / counts.sum().clamp(min=1)
    order = rng.permutation(X.shape[0])
    n_val = max(1, int(cfg.val_fraction * X.shape[0]))
    val_idx, train_idx = np.sort(order[:n_val]), order[n_val:]
    enc_cfg = EncoderConfig(
        ntoken=len(vocab),
        d_model=cfg.d_model,
        nhead=cfg.nhead,
        d_hid=cfg.d_hid,
        nlayers=cfg.nlayers,
        dropout=cfg.dropout,
        do_mvc=cfg.mvc,
        pad_token_id=vocab.pad_id,
        n_bins=cfg.n_bins,
    )
    model = TransformerModel(enc_cfg)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _lr_lambda(total, max(1, int(cfg.warmup_fraction * total)))
    )
    record = {
        "max_len": cfg.max_len,
        "n_bins": cfg.n_bins,
        "pretrain": asdict(cfg),
        "data": {
            "n_cells": int(X.shape[0]),
            "n_train": len(train_idx),
            "n_val": int(n_val),
            "n_genes_corpus": int(X.shape[1]),
            "n_genes_vocab": len(vocab) - 3,
            "mean_tokens_per_cell": float(lengths.mean()),
            "sources": {str(k): int(v) for k, v in corpus.obs["source"].value_counts().items()}
            if "source" in corpus.obs
            else {},
        },
        "history": [],
    }
    start_epoch = 0
    if resume and (out / STATE).exists() and (out / CONFIG).exists():
        saved = json.loads((out / CONFIG).read_text())
        if saved.get("pretrain") == asdict(cfg) and saved.get("data") == record["data"]:
            from safetensors.torch import load_file

            model.load_state_dict(load_file(out / WEIGHTS))
            state = torch.load(out / STATE, weights_only=True)
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            record["history"] = saved["history"]
            start_epoch = len(saved["history"])
            logger.info("Resuming from epoch %d in %s.", start_epoch, out)
        else:
            logger.warning("%s holds a run with another config or corpus; starting afresh.", out)
    gen = torch.Generator()
    last = cfg.epochs if stop_after is None else min(cfg.epochs, start_epoch + stop_after)
    for epoch in range(start_epoch, last):
        t0 = time.perf_counter()
        gen.manual_seed(cfg.seed + 1000 * (epoch + 1))  # masks depend on the epoch only
        model.train()
        perm = train_idx[np.random.default_rng(cfg.seed + epoch).permutation(len(train_idx))]
        running, n = 0.0, 0
        bar = tqdm(
            range(0, len(perm), cfg.batch_size),
            disable=not progress,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
        )
        for s in bar:
            rows = torch.from_numpy(perm[s : s + cfg.batch_size])
            loss = _loss(
                model,
                batch.genes[rows],
                batch.values[rows],
                batch.padding[rows],
                cfg,
                gen,
                neg_probs,
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            running, n = running + float(loss.detach()), n + 1
            bar.set_postfix(loss=f"{running / n:.3f}")
        val, val_mvc = evaluate_loss(model, batch, val_idx, cfg, neg_probs)
        record["history"].append(
            {
                "epoch": epoch + 1,
                "train_loss": running / max(n, 1),
                "val_loss": val,
                "val_mvc_loss": val_mvc,
                "seconds": time.perf_counter() - t0,
            }
        )
        logger.info(
            "epoch %d: train %.4f, val %.4f (cell-embedding decoder %.4f)",
            epoch + 1,
            running / max(n, 1),
            val,
            val_mvc,
        )
        state = {
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        # the optimiser state is kept only while the run can still be resumed
        done = epoch + 1 == cfg.epochs
        save_checkpoint(out, model, vocab, record, extra=None if done else {STATE: state})
    return record


@torch.inference_mode()
def evaluate_loss(
    model: TransformerModel, batch, idx: np.ndarray, cfg: PretrainConfig, neg_probs
) -> tuple[float, float]:
    """Validation losses with fixed masks: token decoder MSE on hidden values, and the
    cell-embedding decoder's MSE on hidden values and absent genes."""
    model.eval()
    gen = torch.Generator().manual_seed(cfg.seed + 12345)
    total, count, mvc_errs = 0.0, 0, []
    for s in range(0, len(idx), 256):
        rows = torch.from_numpy(idx[s : s + 256])
        genes, values, padding = batch.genes[rows], batch.values[rows], batch.padding[rows]
        inp, masked = _mask(values, padding, cfg.mask_ratio, model.cfg.mask_value, gen)
        out = model(genes, inp, padding)
        total += float(((out["pred"][masked] - values[masked] / _scale(model)) ** 2).sum())
        if "mvc_pred" in out:
            mvc_errs.append(
                _mvc_errors(model, out, genes, values, masked, neg_probs, cfg.n_negative, gen)
            )
        count += int(masked.sum())
    mvc = float(torch.cat(mvc_errs).mean()) if mvc_errs else float("nan")
    return total / max(count, 1), mvc
