"""Incremental learning benchmark: the paper's Fig. 4 protocol on our real data.

The 142 malignant oligodendroglioma cells come from four patients. For 10, 20, 30 and 50
labelled cells drawn from the two largest patients, ``sa.tl.add_cell_type`` learns
"malignant cell" (brain) in a fresh scagent home (the shipped atlas and plugins, nothing
learnt before); then ``sa.tl.annotate`` (novelty detection on) is scored on the other two
patients' malignant cells (never seen), on the atlas's brain cells (known types of the
tissue learnt in) and on scanpy's ``pbmc68k_reduced`` (another study of another tissue), each
before and after, so forgetting would show.
"""

from __future__ import annotations

import logging
import tempfile
import time

import anndata as ad
import numpy as np
import pandas as pd

from ..datasets import novel_type_example, reference_atlas
from ._report import Section

__all__ = ["incremental_suite"]

logger = logging.getLogger("scagent")

SIZES = (10, 20, 30, 50)
NEW = "malignant cell"


def _queries():
    malignant = novel_type_example()
    donors = malignant.obs["donor"].astype(str)
    order = donors.value_counts().index.tolist()
    learn_from = np.flatnonzero(donors.isin(order[:2]).to_numpy())
    test = malignant[~donors.isin(order[:2]).to_numpy()].copy()
    atlas = reference_atlas()
    brain = atlas[atlas.obs["tissue"].astype(str) == "brain"].copy()
    from ._batch import pbmc68k

    blood = pbmc68k()
    blood = blood[blood.obs["cell_type"] != ""].copy()
    return malignant, learn_from, test, brain, blood, order


def _score(test, brain, blood) -> dict:
    """Scores of one annotation of (held-out malignant + brain) cells and one of pbmc68k."""
    from .. import tl

    genes = test.var_names.intersection(brain.var_names)
    q = ad.concat([test[:, genes], brain[:, genes]], join="inner")
    q.obs_names_make_unique()
    is_new = np.r_[np.ones(test.n_obs, bool), np.zeros(brain.n_obs, bool)]
    tl.annotate(q, progress=False)
    calls = q.obs["scagent_cell_type"].astype(str).to_numpy()
    truth = brain.obs["cell_type"].astype(str).to_numpy()
    b = blood.copy()
    tl.annotate(b, progress=False)
    known = b.obs["scagent_cell_type"].astype(str).to_numpy()
    return {
        "malignant recall (held-out patients)": float((calls[is_new] == NEW).mean()),
        "malignant flagged novel": float(q.obs["scagent_is_novel"].to_numpy()[is_new].mean()),
        "known brain types right": float((calls[~is_new] == truth).mean()),
        "pbmc68k_reduced right": float((known == b.obs["cell_type"].astype(str)).mean()),
    }


def incremental_suite(*, seed: int = 0, quick: bool = False) -> Section:
    """Run the incremental learning benchmark (module docstring)."""
    from .. import tl
    from .._settings import settings

    malignant, learn_from, test, brain, blood, order = _queries()
    sizes = (30,) if quick else SIZES
    rows, curves = [], {}
    saved_home = settings._data_dir
    try:
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix="scagent-incremental-") as home:
                settings.data_dir = home
                t0 = time.perf_counter()
                before = _score(test, brain, blood) if n == sizes[0] else None
                if before is not None:
                    rows.append({"labelled cells": 0, "step": "before", **before, "seconds": 0})
                rng = np.random.default_rng(seed)
                cells = malignant[np.sort(rng.permutation(learn_from)[:n])].copy()
                t = time.perf_counter()
                result = tl.add_cell_type(cells, NEW, tissue="brain", seed=seed)
                add_s = time.perf_counter() - t
                after = _score(test, brain, blood)
                rows.append(
                    {
                        "labelled cells": n,
                        "step": f"after add_cell_type ({result.plugin})",
                        **after,
                        "seconds": round(add_s, 1),
                    }
                )
                curves[n] = result.history
                logger.info("Incremental n=%d done in %.0f s", n, time.perf_counter() - t0)
    finally:
        settings.data_dir = saved_home
    section = Section(
        "Incremental learning",
        "The paper's Fig. 4 protocol: 'malignant cell' learnt by sa.tl.add_cell_type from n "
        f"labelled cells of patients {', '.join(order[:2])}; scored on the other patients' "
        "malignant cells, on the known brain types and on pbmc68k_reduced (known blood types "
        "of another study), before and after. 'seconds': add_cell_type alone, on this CPU.",
    )
    section.extra_tables.append(("Accuracy before and after learning", rows))
    section.plots.append(
        (
            "Plugin training per epoch while learning the new type: training and validation "
            "loss, and validation accuracy (the early-stopping cells: new and replayed known "
            "types; epoch 0: the head-only probe)",
            "incremental_loss.png",
            lambda path: _loss_plot(curves, path),
        )
    )
    section.notes.append(
        "Validation in the plot: the plugin's own early-stopping cells (a share of the new "
        "cells and of the replayed known cells); the table's accuracies are on held-out "
        "patients and datasets. Training keeps the epoch of lowest validation loss."
    )
    return section


def _loss_plot(curves: dict, path) -> None:
    from ._plots import _pyplot

    plt = _pyplot()
    fig, (ax, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for n, hist in curves.items():
        frame = pd.DataFrame(hist)
        if frame.empty:
            continue
        x = np.arange(len(frame))
        line = ax.plot(x, frame["val_loss"], marker="o", label=f"{n} cells: validation")[0]
        if "train_loss" in frame:
            ax.plot(
                x,
                frame["train_loss"],
                linestyle="--",
                color=line.get_color(),
                label=f"{n} cells: training",
            )
        if "val_accuracy" in frame:
            ax_acc.plot(x, frame["val_accuracy"], marker="o", label=f"{n} cells")
    ax.set_xlabel("epoch (0: probe)")
    ax.set_ylabel("cross-entropy")
    ax.legend(fontsize=7)
    ax_acc.set_xlabel("epoch (0: probe)")
    ax_acc.set_ylabel("validation accuracy")
    ax_acc.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
