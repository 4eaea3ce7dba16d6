"""The two training stages of a plugin (head-only probe, then adapter + head) and their data.

Both stages are scored by one function on one set of early-stopping views, the same mix
of full and gene-subset cells that training optimises, so their losses compare directly.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ..models import TokenBatch

__all__: list[str] = []

CHUNK = 128


def variable_order(X, ids: np.ndarray) -> np.ndarray:
    """Vocabulary genes (columns) ordered from most to least variable (dispersion of log data)."""
    known = np.flatnonzero(ids >= 0)
    sub = X[:, known]
    mean = np.asarray(sub.mean(axis=0)).ravel()
    sq = sub.multiply(sub) if sp.issparse(sub) else sub * sub
    var = np.asarray(sq.mean(axis=0)).ravel() - mean**2
    disp = np.where(mean > 0, var / np.maximum(mean, 1e-12), -np.inf)
    return known[np.argsort(-disp, kind="stable")]


def gene_subset(
    ids: np.ndarray,
    fraction: tuple[float, float],
    rng: np.random.Generator,
    order: np.ndarray | None = None,
) -> np.ndarray:
    """Vocabulary ids with all but a subset of the genes hidden (-1).

    The share of genes kept is drawn log-uniformly from ``fraction``. Half of the time
    (when ``order`` is given) the subset is the most variable genes, as in files cut to
    highly variable genes; otherwise a random share of all genes, as in targeted panels
    and shallow data.
    """
    lo, hi = np.log(fraction[0]), np.log(fraction[1])
    share = np.exp(rng.uniform(lo, hi))
    if order is not None and len(order) and rng.random() < 0.5:
        keep = np.zeros(len(ids), dtype=bool)
        keep[order[: max(1, int(share * len(order)))]] = True
    else:
        keep = rng.random(len(ids)) < share
    return np.where(keep, ids, -1)


def embed(net: nn.Module, batch: TokenBatch, device: str, chunk: int = CHUNK) -> torch.Tensor:
    """``<cls>`` embeddings of a token batch, in chunks (gradients flow if enabled)."""
    out = []
    for s in range(0, len(batch), chunk):
        b = batch.take(slice(s, s + chunk))
        out.append(
            net.cell_embedding(b.genes.to(device), b.values.to(device), b.padding.to(device))
        )
    return torch.cat(out)


@dataclass
class Views:
    """Cells as the model is asked to read them: full transcriptomes and gene subsets.

    Attributes
    ----------
    full
        Token batch of every cell with all its genes.
    subset
        Token batches (one per chunk of cells, each chunk with its own random gene subset)
        of the same cells in the same order; empty without gene-subset augmentation.
    y
        (cells,) class index.
    subset_weight
        Weight of the subset view in :meth:`losses` (the share of such batches in training).
    """

    full: TokenBatch
    subset: list[TokenBatch]
    y: torch.Tensor
    subset_weight: float

    def embeddings(self, net: nn.Module, device: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``<cls>`` embeddings of the full and (if any) subset views, without gradients."""
        with torch.no_grad():
            full = embed(net, self.full, device)
            sub = torch.cat([embed(net, b, device) for b in self.subset]) if self.subset else None
        return full, sub

    def losses(
        self, head: nn.Module, full: torch.Tensor, sub: torch.Tensor | None, n_labels: int
    ) -> torch.Tensor:
        """Per-cell cross-entropy, the full and subset views mixed as in training."""
        y = self.y.to(full.device)
        with torch.no_grad():
            loss = F.cross_entropy(head(full)[:, :n_labels], y, reduction="none")
            if sub is not None and self.subset_weight > 0:
                s = F.cross_entropy(head(sub)[:, :n_labels], y, reduction="none")
                loss = (1 - self.subset_weight) * loss + self.subset_weight * s
        return loss.cpu()

    def accuracy(self, head: nn.Module, full: torch.Tensor, n_labels: int) -> float:
        """Share of the cells whose full view the head assigns to their own class."""
        with torch.no_grad():
            pred = head(full)[:, :n_labels].argmax(1).cpu()
        return float((pred == self.y.cpu()).float().mean())


def make_views(tokens, X, ids, rows, y, *, tokenize, subset, weight, chunk=32) -> Views:
    """:class:`Views` of ``rows``: their full tokens and (``weight > 0``) gene-subset tokens.

    ``tokenize(X_rows, ids)`` tokenises; ``subset()`` draws the visible vocabulary ids.
    """
    parts = []
    if weight > 0:
        for s in range(0, len(rows), chunk):
            part = rows[s : s + chunk]
            parts.append(tokenize(X[part], subset()))
    return Views(tokens.take(rows), parts, torch.as_tensor(y[rows]), weight if parts else 0.0)


def probe(
    head: nn.Module,
    emb: torch.Tensor,
    y: torch.Tensor,
    weights: np.ndarray,
    score: Callable[[], torch.Tensor] | None,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    rng: np.random.Generator,
    patience: int = 10,
) -> tuple[torch.Tensor | None, int]:
    """Fit the head alone on cached frozen embeddings (standardised with their statistics).

    ``score()`` gives the per-cell early-stopping losses of the head as it is; the state
    with the lowest mean is kept. Returns those losses (``None`` without ``score``) and
    the epoch they came from.
    """
    y = y.to(emb.device)
    head.standardise_with(emb)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    batch = max(1, min(batch_size, len(emb)))
    steps = max(1, math.ceil(len(emb) / batch))
    best: tuple[float, dict | None, torch.Tensor | None, int] = (math.inf, None, None, 0)
    for epoch in range(epochs):
        head.train()
        for _ in range(steps):
            idx = torch.as_tensor(rng.choice(len(emb), size=batch, p=weights))
            loss = F.cross_entropy(head(emb[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if score is None:
            continue
        head.eval()
        losses = score()
        if float(losses.mean()) < best[0]:
            best = (float(losses.mean()), copy.deepcopy(head.state_dict()), losses, epoch + 1)
        elif epoch + 1 - best[3] >= patience:
            break
    head.eval()
    if best[1] is not None:
        head.load_state_dict(best[1])
    return best[2], best[3] if score is not None else epochs


def paired_verdict(fine_tuned: torch.Tensor, probe: torch.Tensor, tolerance: float) -> str:
    """Why the fine-tuned state is worse than the probe's on the same cells ("" if it is not).

    It is worse when its mean per-cell loss exceeds the probe's by more than ``tolerance``
    (nats) AND by more than two standard errors of the paired differences: a loss that
    only differs within the noise of a few validation cells keeps the fine-tuned adapter.
    """
    d = (fine_tuned - probe).double().numpy()
    mean = float(d.mean())
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else math.inf
    if mean > tolerance and mean > 2 * se:
        return (
            f"fine-tuning raised the early-stopping loss from {float(probe.mean()):.3f} to "
            f"{float(fine_tuned.mean()):.3f} (by {mean:.3f} +- {se:.3f} on {len(d)} cells), "
            "so the head-only probe was kept"
        )
    return ""


@dataclass
class FineTuneResult:
    """Outcome of the adapter + head stage.

    Attributes
    ----------
    state
        Adapter and head weights of the kept epoch.
    epoch
        The kept epoch (1-based).
    losses
        Per-cell early-stopping losses of the kept epoch (``None`` without such cells).
    history
        One dict per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy``.
    """

    state: dict
    epoch: int
    losses: torch.Tensor | None
    history: list[dict]


def fine_tune(
    params: list[nn.Parameter],
    head: nn.Module,
    modules: list[nn.Module],
    step_loss: Callable[[], torch.Tensor],
    score: Callable[[], torch.Tensor] | None,
    snapshot: Callable[[], dict],
    *,
    epochs: int,
    steps: int,
    lr: float,
    head_lr: float,
    weight_decay: float,
    patience: int,
    progress: Callable[[int, float, float], None] | None = None,
    accuracy: Callable[[], float] | None = None,
) -> FineTuneResult:
    """Train adapter ``params`` and ``head`` together; keep the epoch ``score`` likes best.

    ``step_loss()`` draws a batch and returns its loss; ``modules`` are switched to training
    mode for the steps (the frozen encoder stays in evaluation mode). One epoch of linear
    warm-up, then cosine decay to zero over ``epochs``. Without ``score`` the last epoch
    is kept. ``accuracy()``, called right after ``score()``, adds the early-stopping cells'
    accuracy to each epoch's history (``val_accuracy``).
    """
    opt = torch.optim.Adam(
        [{"params": params}, {"params": head.parameters(), "lr": head_lr}],
        lr=lr,
        weight_decay=weight_decay,
    )
    total = max(1, epochs * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / steps) * 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0))),
    )
    best: FineTuneResult | None = None
    history: list[dict] = []
    for epoch in range(1, epochs + 1):
        for m in [*modules, head]:
            m.train()
        running = 0.0
        for _ in range(steps):
            loss = step_loss()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach())
        for m in [*modules, head]:
            m.eval()
        losses = score() if score is not None else None
        val = float(losses.mean()) if losses is not None else math.nan
        acc = accuracy() if accuracy is not None and losses is not None else math.nan
        history.append(
            {"epoch": epoch, "train_loss": running / steps, "val_loss": val, "val_accuracy": acc}
        )
        if progress is not None:
            progress(epoch, running / steps, val)
        if best is None or losses is None or val < float(best.losses.mean()):
            best = FineTuneResult(snapshot(), epoch, losses, history)
        elif epoch - best.epoch >= patience:
            break
    if best is None:
        return FineTuneResult(snapshot(), 0, None, history)
    best.history = history
    return best
