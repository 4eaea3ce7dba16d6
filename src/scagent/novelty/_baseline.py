"""What the markers say of a known class's own reference cells.

Two per-class baselines, measured on a sample of the class's reference cells over the
query's genes and scored the way query cells are (grouped by class, as query cells are
grouped by cluster):

``outside``
    The marker expert's mean mass on cell types unrelated to every reference class. Some
    reference classes carry such mass themselves: a type learnt with
    ``sa.tl.add_cell_type`` under a name the marker table lacks (malignant cells whose
    markers read as astrocytes or oligodendrocyte precursors), or a class whose markers
    overlap another tissue's. Their query cells must not look new for resembling their own
    class, so the ``outside_markers`` signal is counted beyond this baseline.
``support``
    The mean mass on the class itself, its ancestors and descendants: how strongly the
    markers confirm the class on its own cells. A query cell called that class is
    confirmed by the markers when it reaches a good part of this (the
    ``call_marker_deficit`` signal); measured on the query's genes, so a panel of a few
    thousand genes lowers the baseline as it lowers the query's support.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["PER_CLASS", "class_marker_baseline"]

#: Reference cells per class the baselines are measured on.
PER_CLASS = 100


def class_marker_baseline(
    reference, genes, calls, reference_classes, *, per_class: int = PER_CLASS, seed: int = 0
) -> pd.DataFrame:
    """Per called class, its own reference cells' marker baselines.

    Parameters
    ----------
    reference
        Labelled reference AnnData (raw counts, as the reference expert reads it).
    genes
        The query's human gene symbols (the reference cells are read over the same genes).
    calls
        Each query cell's called class; only these classes are measured.
    reference_classes
        Every class of the reference (what "outside" is relative to).
    per_class
        Reference cells sampled per class.
    seed
        Seed of the sample.

    Returns
    -------
    One row per measured class (classes without reference cells are left out), columns
    ``outside`` and ``support`` (see the module docstring).
    """
    from ..experts import marker_expert
    from ..experts._reference import LABEL_KEY, _panel, _training_matrix
    from ._signals import call_support, outside_mass

    empty = pd.DataFrame(columns=["outside", "support"], dtype=float)
    labels = reference.obs[LABEL_KEY].astype(str).to_numpy()
    wanted = sorted(set(np.asarray(calls).astype(str)) & set(labels))
    if not wanted:
        return empty
    rng = np.random.default_rng(seed)
    rows = np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in wanted])
    )
    panel = _panel(reference, np.asarray(genes, dtype=str))
    if len(panel) == 0:
        return empty
    X = _training_matrix(reference[rows], panel)
    groups = labels[rows]
    markers = marker_expert(X, panel, groups=groups)
    mass, _ = outside_mass(markers, reference_classes)
    frame = pd.DataFrame({"outside": mass, "support": call_support(markers, groups)})
    return frame.groupby(groups).mean().astype(float)
