"""How much of the markers' mass a known class's own reference cells put outside the reference.

The ``outside_markers`` signal is the marker expert's mass on cell types unrelated to every
reference class. Some reference classes carry such mass themselves: a type learnt with
``sa.tl.add_cell_type`` under a name the marker table lacks (malignant cells whose markers
read as astrocytes or oligodendrocyte precursors), or a class whose markers overlap another
tissue's. Their cells must not look new for resembling their own class, so the signal is
counted beyond the called class's own baseline: the mean outside mass of a sample of the
class's reference cells, scored the same way (grouped by class, as query cells are grouped
by cluster).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["PER_CLASS", "class_outside_baseline"]

#: Reference cells per class the baseline is measured on.
PER_CLASS = 100


def class_outside_baseline(
    reference, genes, calls, reference_classes, *, per_class: int = PER_CLASS, seed: int = 0
) -> dict[str, float]:
    """Per called class, its own reference cells' mean marker mass outside the reference.

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
    Class id to its baseline (classes without reference cells are left out).
    """
    from ..experts import marker_expert
    from ..experts._reference import LABEL_KEY, _panel, _training_matrix
    from ._signals import outside_mass

    labels = reference.obs[LABEL_KEY].astype(str).to_numpy()
    wanted = sorted(set(np.asarray(calls).astype(str)) & set(labels))
    if not wanted:
        return {}
    rng = np.random.default_rng(seed)
    rows = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in wanted]
    )
    panel = _panel(reference, np.asarray(genes, dtype=str))
    if len(panel) == 0:
        return {}
    X = _training_matrix(reference[np.sort(rows)], panel)
    groups = labels[np.sort(rows)]
    mass, _ = outside_mass(marker_expert(X, panel, groups=groups), reference_classes)
    return pd.Series(mass, dtype=float).groupby(groups).mean().to_dict()
