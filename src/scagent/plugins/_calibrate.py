"""Confidence calibration: temperature scaling and expected calibration error."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["expected_calibration_error", "fit_temperature"]

MIN_CALIBRATION_CELLS = 20


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, bounds=(0.25, 10.0)) -> float:
    """The softmax temperature that minimises the negative log-likelihood (Guo et al. 2017).

    Parameters
    ----------
    logits
        (cells, classes) validation logits.
    labels
        (cells,) true class index.
    bounds
        Allowed range; the fit is clipped to it.

    Returns
    -------
    The temperature; 1.0 when fewer than 20 cells are given (too few to fit).
    """
    if len(labels) < MIN_CALIBRATION_CELLS:
        return 1.0
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    grid = np.exp(np.linspace(np.log(bounds[0]), np.log(bounds[1]), 121))
    with torch.no_grad():
        nll = [float(torch.nn.functional.cross_entropy(z / t, y)) for t in grid]
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
