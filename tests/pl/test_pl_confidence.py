import numpy as np
import pytest

import scagent as sa
from scagent.pl._confidence import agreement_shares


def test_confidence_violins_and_agreement(annotated):
    conf_ax, agree_ax = sa.pl.confidence(annotated, show=False)
    counts = annotated.obs["scagent_cell_type"].value_counts()
    counts = counts[counts > 0]
    labels = [t.get_text() for t in conf_ax.get_yticklabels()]
    assert labels[0] == f"{counts.index[0]} ({counts.iloc[0]:,})"
    assert len(labels) == len(counts)
    assert conf_ax.get_xlim() == (0, 1.02)
    bars = agree_ax.patches
    assert len(bars) == 4 * len(counts)  # four agreement levels per call
    widths = np.array([b.get_width() for b in bars]).reshape(4, -1)
    np.testing.assert_allclose(widths.sum(axis=0), 1.0)


def test_agreement_shares_count_the_cells(annotated):
    shares = agreement_shares(annotated)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    call = shares.index[0]
    m = annotated.obs["scagent_cell_type"] == call
    a = annotated.obs.loc[m, "scagent_agreement"].to_numpy()
    assert shares.loc[call, "all"] == pytest.approx(np.mean(a >= 1 - 1e-6))
    assert shares.loc[call, "none"] == pytest.approx(np.mean(a < 1e-6))


def test_confidence_box_on_one_axes(annotated):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    got = sa.pl.confidence(annotated, groupby="cell_type", kind="box", ax=ax, show=False)
    assert got is ax
    assert len(ax.get_yticklabels()) == annotated.obs["cell_type"].nunique()


def test_confidence_clear_errors(annotated):
    with pytest.raises(sa.InputDataError, match="kind must be 'violin' or 'box'"):
        sa.pl.confidence(annotated, kind="bar", show=False)
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    with pytest.raises(sa.InputDataError, match="agreement=True draws a second panel"):
        sa.pl.confidence(annotated, agreement=True, ax=ax, show=False)
