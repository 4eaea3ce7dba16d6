"""Classification metrics, overall and per tissue."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

__all__ = ["scores"]


def scores(y_true, y_pred, tissues) -> dict:
    """Accuracy, macro-F1, weighted-F1 and weighted-F1 per tissue.

    Macro-F1 averages over the true classes present (a predicted class absent from the
    truth does not add a zero).
    """
    y_true = np.asarray(y_true, dtype=str)
    y_pred = np.asarray(y_pred, dtype=str)
    tissues = np.asarray(tissues, dtype=str)
    labels = np.unique(y_true)
    out = {
        "n": len(y_true),
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "weighted_f1": f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0),
    }
    per = {}
    for t in pd.unique(tissues):
        m = tissues == t
        per[str(t)] = f1_score(
            y_true[m], y_pred[m], labels=np.unique(y_true[m]), average="weighted", zero_division=0
        )
    out["per_tissue_weighted_f1"] = dict(sorted(per.items()))
    return out
