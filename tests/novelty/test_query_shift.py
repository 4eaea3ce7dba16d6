"""Where the open-set vote's relative bar stands on nothing: a query made mostly of a new
type, whose known cells are in classes too small for a model of their own. The markers
say which units are known; the embedding says whether the query is shifted."""

import numpy as np
import pandas as pd
import pytest

from scagent.experts import ExpertCall
from scagent.novelty import (
    call_support,
    confirmed_units,
    open_set_background,
    query_shift,
    statistical_decision,
)


def test_call_support_counts_the_call_its_ancestors_and_descendants():
    # B cell, naive B cell (a subtype of B cell), CD14-positive monocyte
    terms = ["CL:0000236", "CL:0000788", "CL:0001054"]
    probs = np.array([[0.3, 0.6, 0.1], [0.3, 0.6, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)
    call = ExpertCall("markers", probs, terms, ["B", "naive B", "CD14 mono"])
    support = call_support(call, np.array(["CL:0000236", "CL:0000788", "CL:0000236"]))
    np.testing.assert_allclose(support, [0.9, 0.9, 0.2], rtol=1e-6)
    # a name outside the ontology has no marker support
    assert call_support(call, np.array(["name:mine"] * 3)).tolist() == [0, 0, 0]


def _query(*, known_ratio: float, known_verdict: float | None, n_new: int = 4, n: int = 30):
    """``n_new`` units of a new type, rejected by every open-set model, markers ambiguous
    (no majority outside the reference), and one confirmed known unit whose cells sit
    ``known_ratio`` times as far from their centroid as the reference's own cells do and
    are rejected at ``known_verdict`` (``None``: no open-set model for their class)."""
    rows, clusters = [], []
    for u in range(n_new + 1):
        new = u < n_new
        rows.append(
            pd.DataFrame(
                {
                    "uncertainty": 0.1,
                    "disagreement": 0.0,
                    "similarity_deficit": -1.0,
                    "outside_markers": 0.3 if new else 0.0,
                    "distance_ratio_pretrained": 0.3 * (1.5 if new else known_ratio),
                    "neighbour_disagreement_pretrained": np.nan,
                    "open_set_rejected": 1.0
                    if new
                    else (np.nan if known_verdict is None else known_verdict),
                    "call_marker_deficit": 0.9 if new else 0.1,
                    "class_median_ratio_pretrained": 0.3,
                    "call": f"CL:{u}",
                },
                index=range(n),
            )
        )
        clusters += [str(u)] * n
    frame = pd.concat(rows, ignore_index=True)
    return frame, np.array(clusters), np.array(clusters) != str(n_new)


@pytest.mark.parametrize("known_verdict", [None, 0.0, 0.2])
def test_an_unshifted_query_of_mostly_a_new_type_is_judged_by_the_majority(known_verdict):
    """Its known cells are accepted by their class's model (or have none): the median unit,
    new, says nothing of how much rejection the study raises."""
    frame, clusters, new = _query(known_ratio=1.0, known_verdict=known_verdict)
    d = statistical_decision(frame, clusters)
    assert d.shift == 1.0 and d.background == (known_verdict or 0.0)
    flags = d.novel_cells()
    assert flags[new].all() and not flags[~new].any()


def test_a_shifted_query_keeps_the_relative_bar():
    """Another study's cells sit several times farther: its rejection may be raised
    everywhere, so a unit rejected like the median one is not new by that vote."""
    frame, clusters, _ = _query(known_ratio=6.0, known_verdict=0.0)
    d = statistical_decision(frame, clusters)
    assert d.shift == 6.0 and d.background == 1.0
    assert not d.novel_cells().any()


def test_known_cells_the_open_set_models_reject_keep_the_median_background():
    """Models that reject half of the confirmed known cells are not to be trusted alone: a
    small reference's weak models, or raised rejection the embedding does not show."""
    frame, clusters, _ = _query(known_ratio=1.0, known_verdict=0.5)
    d = statistical_decision(frame, clusters)
    assert d.background == 1.0 and not d.novel_cells().any()


def test_without_confirmed_units_the_shift_is_unknown_and_the_bar_relative():
    frame, clusters, _ = _query(known_ratio=1.0, known_verdict=None)
    frame["call_marker_deficit"] = 0.9
    assert confirmed_units(frame, clusters) == []
    assert np.isnan(query_shift(frame, clusters, []))
    share = pd.Series([1.0, 1.0, 1.0])
    assert open_set_background(share, [], float("nan")) == 1.0
    assert statistical_decision(frame, clusters).background == 1.0
