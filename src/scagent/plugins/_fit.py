"""One plugin's training run on the shared encoder: probe, fine-tuning, choice, calibration."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..models import Encoder
from ..nn import (
    MoELoRAConfig,
    SlotHead,
    adapter_state_dict,
    add_adapter,
    load_adapter_state,
    remove_adapter,
    set_adapter,
)
from ._calibrate import calibrate, classification_metrics
from ._host import host_for
from ._stages import (
    Views,
    embed,
    fine_tune,
    gene_subset,
    make_views,
    paired_verdict,
    probe,
    variable_order,
)

__all__: list[str] = []

logger = logging.getLogger("scagent")


@dataclass
class Outcome:
    """What a training run produced: weights, temperature, metrics, per-epoch history."""

    state: dict
    temperature: float = 1.0
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


class PluginFit:
    """Train one plugin's adapter and head on the shared encoder (see ``train_plugin``).

    The adapter is added to the encoder under a private name for the run and removed
    afterwards, whatever happens; the encoder's own weights never train.

    Parameters
    ----------
    encoder
        The loaded encoder.
    X, ids
        Log1p(CP10k) CSR matrix and vocabulary id per column (``model_input``).
    y, labels
        Class index per cell and class names.
    cfg
        A ``TrainConfig``.
    lora, head_hidden, max_len
        Adapter shape, hidden blocks of the head, tokens per cell.
    name
        Plugin name (for the adapter's name and messages).
    seed, device, progress
        Random seed, torch device, progress bar.
    """

    def __init__(
        self,
        encoder: Encoder,
        X,
        ids: np.ndarray,
        y: np.ndarray,
        labels: list[str],
        *,
        cfg,
        lora: MoELoRAConfig,
        head_hidden: int,
        max_len: int,
        name: str,
        seed: int,
        device: str,
        progress: bool,
    ) -> None:
        self.encoder, self.X, self.ids, self.y, self.labels = encoder, X, ids, y, labels
        self.cfg, self.lora, self.max_len, self.name = cfg, lora, max_len, name
        self.seed, self.device, self.progress = seed, device, progress
        self.host = host_for(encoder)
        self.tokens = self.host.tokens(X, ids, max_len)[0]
        self.order = variable_order(X, ids) if cfg.gene_dropout > 0 else None
        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.net = encoder.model.to(device).eval()
        self.key = f"_training_{name}"
        self.head = SlotHead(encoder.dim, len(labels), n_hidden=head_hidden).to(device)
        self.y_t = torch.as_tensor(y)

    # --- data -----------------------------------------------------------------------
    def _tokenize(self, rows_X, visible: np.ndarray):
        return self.host.tokens(rows_X, visible, self.max_len)[0]

    def _subset(self) -> np.ndarray:
        return gene_subset(self.ids, self.cfg.gene_fraction, self.rng, self.order)

    def _views(self, rows: np.ndarray) -> Views | None:
        if not len(rows):
            return None
        return make_views(
            self.tokens,
            self.X,
            self.ids,
            rows,
            self.y,
            tokenize=self._tokenize,
            subset=self._subset,
            weight=self.cfg.gene_dropout,
        )

    def _snapshot(self) -> dict:
        return {
            **{f"lora.{k}": v for k, v in adapter_state_dict(self.net, self.key).items()},
            **{f"head.{k}": v.detach().cpu().clone() for k, v in self.head.state_dict().items()},
        }

    def _restore(self, state: dict) -> None:
        load_adapter_state(
            self.net, self.key, {k[5:]: v for k, v in state.items() if k[:5] == "lora."}
        )
        self.head.load_state_dict({k[5:]: v for k, v in state.items() if k[:5] == "head."})

    def _logits(self, rows: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            z = self.head(embed(self.net, self.tokens.take(rows), self.device))
        return z[:, : len(self.labels)].float().cpu()

    # --- the run ----------------------------------------------------------------------
    def run(self, train: np.ndarray, stop: np.ndarray, calibration: np.ndarray) -> Outcome:
        """Probe, fine-tune, keep the better state, calibrate; the adapter is removed after."""
        params = add_adapter(self.net, self.key, self.lora)
        for p in self.net.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        try:
            set_adapter(self.net, self.key)  # B = 0: the adapted encoder starts as the frozen one
            stop_views = self._views(stop)
            probe_losses, probe_accuracy = self._probe(train, stop_views)
            self.probe_state = self._snapshot()
            out = Outcome(self.probe_state)
            loss = float(probe_losses.mean()) if probe_losses is not None else math.nan
            out.history.append(
                {"epoch": 0, "stage": "probe", "val_loss": loss, "val_accuracy": probe_accuracy}
            )
            out.metrics["probe_val_loss"] = loss
            note = self._why_not_fine_tune(train)
            if not note:
                note = self._fine_tune(params, train, stop_views, probe_losses, out)
            out.metrics.setdefault("best_epoch", 0)
            out.metrics.update(
                adapter_trained=not note, adapter_note=note, epochs_run=len(out.history) - 1
            )
            if note:
                logger.info("Plugin %s: %s.", self.name, note)
            self._restore(out.state)
            self._calibrate(calibration, out)
        finally:
            remove_adapter(self.net, self.key)
            for p in self.net.parameters():
                p.requires_grad_(False)
        return out

    def _why_not_fine_tune(self, train: np.ndarray) -> str:
        if self.cfg.max_epochs < 1:
            return "max_epochs is 0: training ended at the head-only probe"
        if len(train) < self.cfg.min_finetune_cells:
            return (
                f"only {len(train)} training cells (fine-tuning needs "
                f"{self.cfg.min_finetune_cells}): training ended at the head-only probe"
            )
        return ""

    def _weights(self, train: np.ndarray) -> np.ndarray:
        counts = np.bincount(self.y[train], minlength=len(self.labels)).astype(float)
        w = counts[self.y[train]] ** -self.cfg.balance
        return w / w.sum()

    def _probe(self, train: np.ndarray, stop: Views | None) -> tuple[torch.Tensor | None, float]:
        """Head only, on frozen embeddings of every training cell (and a gene-subset view).
        Returns the kept head's early-stopping losses and accuracy (``None``, NaN without
        early-stopping cells)."""
        cfg, n = self.cfg, len(self.labels)
        full, sub = self._views(train).embeddings(self.net, self.device)
        w = self._weights(train)
        emb, y = full, self.y_t[train]
        if sub is not None:
            emb, y, w = torch.cat([full, sub]), torch.cat([y, y]), np.concatenate([w, w]) / 2
        score, frozen = None, None
        if stop is not None:
            frozen = stop.embeddings(self.net, self.device)

            def score():
                return stop.losses(self.head, *frozen, n)

        losses, _ = probe(
            self.head,
            emb,
            y,
            w,
            score,
            epochs=cfg.probe_epochs,
            lr=cfg.probe_lr,
            weight_decay=cfg.weight_decay,
            batch_size=cfg.batch_size,
            rng=self.rng,
        )
        accuracy = stop.accuracy(self.head, frozen[0], n) if frozen is not None else math.nan
        return losses, accuracy

    def _fine_tune(self, params, train, stop: Views | None, probe_losses, out: Outcome) -> str:
        """Adapter and head together; returns why the probe was kept ("" if it was not)."""
        cfg, rng, n = self.cfg, self.rng, len(self.labels)
        weights = self._weights(train)
        batch = max(1, min(cfg.batch_size, len(train)))
        steps = max(
            cfg.min_steps_per_epoch, math.ceil(min(len(train), cfg.samples_per_epoch) / batch)
        )

        def step_loss():
            idx = train[rng.choice(len(train), size=batch, p=weights)]
            if rng.random() < cfg.gene_dropout:
                b = self._tokenize(self.X[idx], self._subset())
            else:
                b = self.tokens.take(idx)
            logits = self.head(embed(self.net, b, self.device, chunk=len(idx)))
            return F.cross_entropy(logits, self.y_t[idx].to(self.device))

        score = accuracy = None
        if stop is not None:
            last: dict = {}

            def score():
                last["emb"] = stop.embeddings(self.net, self.device)
                return stop.losses(self.head, *last["emb"], n)

            def accuracy():  # on the embeddings score() just made
                return stop.accuracy(self.head, last["emb"][0], n)

        bar = tqdm(total=cfg.max_epochs, disable=not self.progress, desc=f"training {self.name}")

        def show(epoch, train_loss, val_loss):
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.3f}", val=f"{val_loss:.3f}")

        adapters = [m for k, m in self.net.named_modules() if k.endswith(f"adapters.{self.key}")]
        result = fine_tune(
            params,
            self.head,
            adapters,
            step_loss,
            score,
            self._snapshot,
            epochs=cfg.max_epochs,
            steps=steps,
            lr=cfg.lr,
            head_lr=cfg.lr * cfg.head_lr,
            weight_decay=cfg.weight_decay,
            patience=cfg.patience,
            progress=show,
            accuracy=accuracy,
        )
        bar.close()
        out.history += [{**h, "stage": "fine-tune"} for h in result.history]
        note = ""
        if result.losses is not None:
            out.metrics["fine_tune_val_loss"] = float(result.losses.mean())
            note = paired_verdict(result.losses, probe_losses, cfg.tolerance)
        if not note:
            out.state, out.metrics["best_epoch"] = result.state, result.epoch
        return note

    def _calibrate(self, rows: np.ndarray, out: Outcome) -> None:
        """Temperature and metrics on the calibration cells; the probe's metrics beside."""
        if not len(rows):
            out.metrics["temperature_note"] = "not fitted: no calibration cells (val_fraction is 0)"
            return
        y = self.y[rows]
        logits = self._logits(rows)
        cfg = self.cfg
        cal = calibrate(
            logits.numpy(),
            y,
            n_folds=cfg.calibration_folds,
            prior_sd=cfg.temperature_prior_sd,
            seed=self.seed,
        )
        after = classification_metrics(cal["probs"], y, self.labels)
        before = classification_metrics(torch.softmax(logits, -1).numpy(), y, self.labels)
        for lab, row in after["per_class"].items():
            row["ece_uncalibrated"] = before["per_class"][lab]["ece"]
        out.temperature = cal["temperature"]
        out.metrics.update(
            n=cal["n"],
            accuracy=after["accuracy"],
            macro_f1=after["macro_f1"],
            ece=cal["ece"],
            ece_uncalibrated=cal["ece_uncalibrated"],
            nll=cal["nll"],
            nll_uncalibrated=cal["nll_uncalibrated"],
            temperature=cal["temperature"],
            temperature_fitted=cal["fitted_temperature"],
            temperature_note=cal["note"],
            per_class=after["per_class"],
        )
        if out.metrics["adapter_trained"]:  # the head-only probe on the same cells, to compare
            self._restore(self.probe_state)
            z = self._logits(rows)
            probe_m = classification_metrics(torch.softmax(z, -1).numpy(), y, self.labels)
            out.metrics.update(
                probe_accuracy=probe_m["accuracy"],
                probe_macro_f1=probe_m["macro_f1"],
                probe_nll=float(F.cross_entropy(z, torch.as_tensor(y))),
            )
            self._restore(out.state)
