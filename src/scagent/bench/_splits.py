"""Evaluation splits of a labelled reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Fold", "holdout_folds", "stratified_split"]


@dataclass
class Fold:
    """Integer positions of training and test cells, with a description."""

    name: str
    train: np.ndarray
    test: np.ndarray


def stratified_split(
    obs: pd.DataFrame,
    *,
    test_size: float = 0.2,
    seed: int = 0,
    tissue_key: str = "tissue",
    label_key: str = "cell_type",
) -> Fold:
    """Split cells 80/20 stratified by cell type within each tissue.

    A (tissue, type) group of one cell stays in training; every larger group puts at least
    one cell in each side.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    codes = obs.groupby([tissue_key, label_key], observed=True, sort=True).indices
    for _, pos in sorted(codes.items()):
        pos = rng.permutation(pos)
        n_test = 0 if len(pos) < 2 else min(len(pos) - 1, max(1, round(test_size * len(pos))))
        test.extend(pos[:n_test])
        train.extend(pos[n_test:])
    return Fold("stratified 80/20 per tissue", np.sort(train), np.sort(test))


def holdout_folds(
    obs: pd.DataFrame,
    *,
    tissue_key: str = "tissue",
    group_keys: tuple[str, ...] = ("donor", "dataset"),
) -> list[Fold]:
    """Leave-one-group-out folds, run for all tissues at once.

    Within each tissue, the groups are its donors (or its datasets when it has a single
    donor). Fold ``i`` holds out the ``i``-th group of every tissue that has more than
    ``i`` groups, so each group is held out exactly once and the number of folds is the
    largest number of groups of any tissue. Tissues with a single group are never held out.
    """
    groups: dict[str, tuple[str, list]] = {}
    for tissue, sub in obs.groupby(tissue_key, observed=True):
        for key in group_keys:
            values = sorted(sub[key].astype(str).unique())
            if len(values) > 1:
                groups[str(tissue)] = (key, values)
                break
    n_folds = max((len(v) for _, v in groups.values()), default=0)
    tissues = obs[tissue_key].astype(str).to_numpy()
    folds = []
    for i in range(n_folds):
        held = np.zeros(len(obs), dtype=bool)
        names = []
        for tissue, (key, values) in sorted(groups.items()):
            if i < len(values):
                held |= (tissues == tissue) & (obs[key].astype(str).to_numpy() == values[i])
                names.append(f"{tissue}:{values[i]}")
        folds.append(
            Fold(f"hold out {', '.join(names)}", np.flatnonzero(~held), np.flatnonzero(held))
        )
    return folds
