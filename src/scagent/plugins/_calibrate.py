"""Confidence calibration: temperature scaling checked on held-out cells, and its metrics."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

__all__ = [
    "MIN_CALIBRATION_CELLS",
    "calibrate",
    "classification_metrics",
    "expected_calibration_error",
    "fit_temperature",
]

#: Fewer calibration cells than this: no temperature is fitted (it stays 1).
MIN_CALIBRATION_CELLS = 20


def _softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def fit_temperature(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    bounds: tuple[float, float] = (0.25, 10.0),
    prior_sd: float | None = 0.5,
    min_cells: int = MIN_CALIBRATION_CELLS,
) -> float:
    """The softmax temperature that best explains held-out labels (Guo et al. 2017).

    Minimises the summed negative log-likelihood plus a Gaussian penalty on
    ``log(temperature)`` (a log-normal prior centred on 1): with many cells the data
    decide, with few the temperature stays near 1 instead of chasing noise.

    Parameters
    ----------
    logits
        (cells, classes) logits of cells the model did not learn from.
    labels
        (cells,) true class index.
    bounds
        Allowed range; the fit is clipped to it.
    prior_sd
        Standard deviation of the prior on ``log(temperature)``; ``None``: no prior
        (plain maximum likelihood).
    min_cells
        Fewer cells than this: return 1 (too few to fit).

    Returns
    -------
    The temperature (divide the logits by it).
    """
    labels = np.asarray(labels)
    if len(labels) < max(1, min_cells):
        return 1.0
    z = np.asarray(logits, dtype=np.float64)
    grid = np.exp(np.linspace(np.log(bounds[0]), np.log(bounds[1]), 241))
    zt = z[None] / grid[:, None, None]  # (grid, cells, classes)
    top = zt.max(axis=2, keepdims=True)
    lse = np.log(np.exp(zt - top).sum(axis=2)) + top[..., 0]
    nll = (lse - zt[:, np.arange(len(labels)), labels]).sum(axis=1)
    if prior_sd is not None:
        nll = nll + np.log(grid) ** 2 / (2 * prior_sd**2)
    return float(grid[int(np.argmin(nll))])


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, *, n_bins: int = 15
) -> float:
    """Expected calibration error: the cell-weighted mean |accuracy - confidence| over bins.

    Parameters
    ----------
    confidence
        (cells,) probability of the predicted class.
    correct
        (cells,) whether the prediction was right.
    n_bins
        Equal-width confidence bins on [0, 1].

    Returns
    -------
    ECE in [0, 1] (``nan`` for no cells).
    """
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if len(confidence) == 0:
        return float("nan")
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(ece)


def _folds(labels: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold number per cell, each class dealt round-robin over the folds (stratified)."""
    fold = np.empty(len(labels), dtype=int)
    start = 0
    for c in np.unique(labels):
        pos = rng.permutation(np.flatnonzero(labels == c))
        fold[pos] = (start + np.arange(len(pos))) % n_folds
        start += len(pos)
    return fold


def calibrate(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    n_folds: int = 5,
    prior_sd: float | None = 0.5,
    min_cells: int = MIN_CALIBRATION_CELLS,
    seed: int = 0,
) -> dict:
    """Fit a temperature on held-out cells and check, on cells it was not fitted on, that it helps.

    The check is cross-fitted: the cells are dealt into ``n_folds`` stratified folds and
    each fold's probabilities are scaled by a temperature fitted on the other folds. The
    temperature fitted on all cells is used only where these out-of-fold probabilities
    beat the raw ones on both counts: a lower negative log-likelihood, by more than one
    standard error of the per-cell gains, and an ECE that is not higher. Otherwise the
    temperature stays 1 and ``note`` says why: on a few dozen cells a temperature fitted
    to noise makes confidences worse on new cells as often as better.

    Parameters
    ----------
    logits
        (cells, classes) logits of calibration cells (not trained or early-stopped on).
    labels
        (cells,) true class index.
    n_folds
        Folds of the cross-fitting.
    prior_sd, min_cells
        See :func:`fit_temperature`.
    seed
        Seed of the fold assignment.

    Returns
    -------
    ``temperature`` (the one to use), ``fitted_temperature``, ``applied``, ``note``,
    ``n``, ``ece_uncalibrated`` and ``ece``, ``nll_uncalibrated`` and ``nll``, and
    ``probs``: the (cells, classes) probabilities behind ``ece`` and ``nll`` (the
    out-of-fold ones where the temperature is applied, so every reported number is
    measured on cells the temperature was not fitted on).
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    n = len(labels)
    raw = _softmax(logits)
    out = {
        "n": n,
        "temperature": 1.0,
        "fitted_temperature": 1.0,
        "applied": False,
        "ece_uncalibrated": expected_calibration_error(raw.max(1), raw.argmax(1) == labels),
        "nll_uncalibrated": _nll(raw, labels) if n else float("nan"),
    }
    out.update(ece=out["ece_uncalibrated"], nll=out["nll_uncalibrated"], probs=raw)
    if n < min_cells:
        out["note"] = (
            f"not fitted: {n} calibration cells, at least {min_cells} are needed "
            "(more training cells or a larger val_fraction give more)"
        )
        return out
    fitted = fit_temperature(logits, labels, prior_sd=prior_sd, min_cells=min_cells)
    fold = _folds(labels, min(n_folds, n), np.random.default_rng(seed))
    held = np.empty_like(raw)
    for k in np.unique(fold):
        rest = fold != k
        t = fit_temperature(logits[rest], labels[rest], prior_sd=prior_sd, min_cells=1)
        held[~rest] = _softmax(logits[~rest], t)
    rows = np.arange(n)
    gain = np.log(np.clip(held[rows, labels], 1e-12, None)) - np.log(
        np.clip(raw[rows, labels], 1e-12, None)
    )
    se = float(gain.std(ddof=1) / np.sqrt(n))
    ece = expected_calibration_error(held.max(1), held.argmax(1) == labels)
    out["fitted_temperature"] = fitted
    how = f"{len(np.unique(fold))}-fold cross-fitting on {n} cells"
    if gain.mean() > se and ece <= out["ece_uncalibrated"]:
        out.update(temperature=fitted, applied=True, ece=ece, nll=_nll(held, labels), probs=held)
        out["note"] = f"applied: held-out ECE and log-likelihood improved ({how})"
    elif gain.mean() <= se:
        out["note"] = (
            f"not applied: temperature {fitted:.2f} did not improve the held-out "
            f"log-likelihood beyond noise ({gain.mean():+.4f} +- {se:.4f} nats per cell, {how})"
        )
    else:
        out["note"] = (
            f"not applied: temperature {fitted:.2f} raised the held-out ECE from "
            f"{out['ece_uncalibrated']:.3f} to {ece:.3f} ({how})"
        )
    return out


def classification_metrics(probs: np.ndarray, labels: np.ndarray, names: list[str]) -> dict:
    """Accuracy, macro-F1, ECE overall and per class (by true class) of held-out cells.

    Parameters
    ----------
    probs
        (cells, classes) predicted probabilities.
    labels
        (cells,) true class index.
    names
        Class names (columns of ``probs``).

    Returns
    -------
    ``accuracy``, ``macro_f1`` (over the classes present), and ``per_class``: for every
    class with held-out cells, ``n``, ``precision``, ``recall``, ``f1``, mean
    ``confidence`` and ``ece`` of its cells.
    """
    labels = np.asarray(labels)
    if len(labels) == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan"), "per_class": {}}
    pred = probs.argmax(1)
    conf = probs.max(1)
    present = np.unique(labels)
    prec, rec, f1, _ = precision_recall_fscore_support(
        labels, pred, labels=present, zero_division=0
    )
    per_class = {}
    for i, c in enumerate(present):
        sel = labels == c
        per_class[names[c]] = {
            "n": int(sel.sum()),
            "precision": float(prec[i]),
            "recall": float(rec[i]),
            "f1": float(f1[i]),
            "confidence": float(conf[sel].mean()),
            "ece": expected_calibration_error(conf[sel], pred[sel] == c),
        }
    return {
        "accuracy": float((pred == labels).mean()),
        "macro_f1": float(f1_score(labels, pred, labels=present, average="macro", zero_division=0)),
        "per_class": per_class,
    }
