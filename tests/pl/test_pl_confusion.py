import numpy as np
import pandas as pd
import pytest

import scagent as sa
from scagent.pl._confusion import confusion_table


def test_confusion_table_is_the_crosstab(annotated):
    table = confusion_table(annotated, "cell_type")
    expected = pd.crosstab(
        annotated.obs["cell_type"].astype(str), annotated.obs["scagent_cell_type"].astype(str)
    )
    pd.testing.assert_frame_equal(
        table.loc[expected.index, expected.columns], expected, check_names=False
    )
    # matches first: the first label's most frequent call is the first column
    assert table.columns[0] == table.iloc[0].idxmax()
    assert sorted(table.columns) == sorted(expected.columns)
    shares = confusion_table(annotated, "cell_type", normalize=True)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)


def test_confusion_plot(annotated):
    ax = sa.pl.confusion(annotated, "cell_type", show=False)
    shares = confusion_table(annotated, "cell_type", normalize=True)
    image = ax.images[0].get_array()
    np.testing.assert_allclose(np.asarray(image), shares.to_numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == list(shares.index)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(shares.columns)
    assert len(ax.texts) == int((shares.to_numpy() > 0).sum())  # numbers in non-empty cells
    assert "50 cells" in ax.get_title()


def test_confusion_counts_without_numbers(annotated):
    ax = sa.pl.confusion(annotated, "cell_type", normalize=False, annotate=False, show=False)
    counts = confusion_table(annotated, "cell_type")
    assert np.asarray(ax.images[0].get_array()).sum() == annotated.n_obs == counts.to_numpy().sum()
    assert len(ax.texts) == 0


def test_confusion_unknown_labels_is_a_clear_error(annotated):
    with pytest.raises(sa.InputDataError, match=r"'louvain' not in adata\.obs"):
        sa.pl.confusion(annotated, "louvain", show=False)
