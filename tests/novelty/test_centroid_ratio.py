"""The distance to the called class's centroid uses the class of the cell's own tissue."""

import numpy as np
import pandas as pd

from scagent.memory import ClassStats
from scagent.novelty._signals import _centroid_ratio


def _stats():
    table = pd.DataFrame(
        {
            "tissue": ["blood", "lung", "blood"],
            "term": ["CL:0000625", "CL:0000625", "CL:0000236"],
            "n": [871, 3, 500],
            "q50": [0.05, 0.0005, 0.1],
            "q95": [0.2, 0.001, 0.2],
        }
    )
    centroids = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)
    return ClassStats(table, centroids)


def test_the_cell_s_own_tissue_decides_which_class_statistics_apply():
    """A blood CD8 T cell is measured against blood's CD8 T class, never against three
    lung cells with another centroid and a tiny spread (the memory keeps a row per tissue)."""
    V = np.array([[0.98, 0.2], [0.98, 0.2], [0.98, 0.2]], dtype=np.float32)
    calls = np.array(["CL:0000625", "CL:0000625", "CL:0000625"], dtype=object)
    ratio, own = _centroid_ratio(
        V, calls, _stats(), np.array(["blood", "lung", "kidney"]), strict=False
    )
    assert ratio[0] < 0.2  # near blood's centroid, well inside its spread
    assert ratio[1] > 100  # the lung class, as asked
    assert ratio[2] == ratio[0]  # no kidney class: the term's largest class (blood)
    # each cell also gets its class's own median distance over the same quantile
    np.testing.assert_allclose(own, [0.25, 0.5, 0.25], rtol=1e-5)
    strict, _ = _centroid_ratio(
        V, calls, _stats(), np.array(["blood", "lung", "kidney"]), strict=True
    )
    assert np.isnan(strict[2])  # tuned space: another tissue's plugin space never stands in
