"""The marker vote (a cluster whose markers point to a type the reference lacks) and the
split of clusters by called type."""

import numpy as np
import pandas as pd

from scagent.novelty import MARKER_MAJORITY, marker_shares, statistical_decision, voting_units


def _frame(outside, calls=None, n=40, seed=0):
    """Clusters of ``n`` cells with the given mean marker mass outside the reference (every
    other signal neutral: the conservative judge alone flags nothing)."""
    rng = np.random.default_rng(seed)
    parts, clusters = [], []
    for c, mass in enumerate(outside):
        parts.append(
            pd.DataFrame(
                {
                    "uncertainty": 0.1,
                    "disagreement": 0.0,
                    "similarity_deficit": -1.0,
                    "outside_markers": np.clip(mass + 0.05 * rng.normal(size=n), 0, 1),
                    "distance_ratio_pretrained": np.nan,
                    "neighbour_disagreement_pretrained": np.nan,
                    "open_set_rejected": np.nan,
                }
            )
        )
        clusters += [str(c)] * n
    frame = pd.concat(parts, ignore_index=True)
    frame["call"] = "CL:0000236" if calls is None else calls
    return frame, np.array(clusters)


def test_a_cluster_whose_markers_point_outside_the_reference_is_novel_as_a_whole():
    frame, clusters = _frame([0.9, 0.05, 0.1, 0.0])
    d = statistical_decision(frame, clusters)
    novel = d.novel_cells()
    assert novel[clusters == "0"].all() and not novel[clusters != "0"].any()
    assert d.marker_share.max() >= MARKER_MAJORITY
    assert marker_shares(frame, clusters)["0"] > 0.8


def test_markers_below_a_majority_leave_the_cluster_to_the_judge():
    frame, clusters = _frame([0.35, 0.05, 0.1])
    assert not statistical_decision(frame, clusters).novel_cells().any()


def test_voting_units_split_a_cluster_by_called_type():
    clusters = np.array(["0"] * 12 + ["1"] * 6)
    calls = np.array(["a"] * 8 + ["b"] * 3 + ["c"] + ["a"] * 6)
    units = voting_units(clusters, calls)
    assert list(units[:8]) == ["0|a"] * 8
    assert set(units[8:12]) == {"0|a"}  # called types under MIN_CELLS join the main unit
    assert set(units[12:]) == {"1|a"}
    few = voting_units(np.array(["2"] * 6), np.array(["a", "a", "b", "b", "c", "c"]))
    assert set(few) == {"2|*"}  # no called type large enough: the cluster is one unit
    assert (voting_units(clusters, None) == clusters).all()


def test_known_cells_called_apart_are_not_swept_along_with_a_novel_cluster():
    """Seven cells confidently called as a known type inside a cluster of new cells are
    judged on their own markers (the brain benchmark's microglia among malignant cells)."""
    n_new, n_known = 60, 7
    frame, clusters = _frame([0.95], n=n_new + n_known)
    calls = np.array(["CL:0000540"] * n_new + ["CL:0000129"] * n_known, dtype=object)
    frame["call"] = calls
    frame.loc[n_new:, "outside_markers"] = 0.05
    novel = statistical_decision(frame, clusters).novel_cells()
    assert novel[:n_new].all() and not novel[n_new:].any()
    merged = statistical_decision(frame, clusters, split_by_call=False).novel_cells()
    assert merged[n_new:].all()  # without the split they would be flagged too


def _suspected_frame(shares, n=40, seed=0):
    """Clusters whose given share of cells look unlike any known type to the judge
    (uncertain, far from their class and its cells), the others like known cells."""
    rng = np.random.default_rng(seed)
    parts, clusters = [], []
    for c, share in enumerate(shares):
        odd = rng.permutation(np.r_[np.ones(round(share * n)), np.zeros(n - round(share * n))])
        parts.append(
            pd.DataFrame(
                {
                    "uncertainty": np.where(odd, 0.6, 0.05),
                    "disagreement": np.where(odd, 0.67, 0.0),
                    "similarity_deficit": np.where(odd, 3.0, -1.0),
                    "outside_markers": 0.0,
                    "distance_ratio_pretrained": np.where(odd, 4.0, 0.5),
                    "neighbour_disagreement_pretrained": np.where(odd, 1.0, 0.0),
                    "open_set_rejected": np.where(odd, 1.0, 0.0),
                    "call": "CL:0000236",
                }
            )
        )
        clusters += [str(c)] * n
    return pd.concat(parts, ignore_index=True), np.array(clusters)


def test_the_judge_s_suspects_must_stand_out_from_the_rest_of_the_query():
    """Another study shifts every cell: suspects everywhere are not a new type; a cluster
    whose suspects stand out from the rest of the query is."""
    frame, clusters = _suspected_frame([0.9, 0.05, 0.1, 0.0, 0.1])
    novel = statistical_decision(frame, clusters).novel_cells()
    assert novel[clusters == "0"].mean() >= 0.85 and not novel[clusters != "0"].any()
    frame, clusters = _suspected_frame([0.6, 0.5, 0.55, 0.45, 0.5])
    assert not statistical_decision(frame, clusters).novel_cells().any()


def test_distance_alone_does_not_make_a_group_novel():
    """Cells far from their class in the embedding, with neighbours of other types, but
    accepted by their class's open-set model and without markers of a type the reference
    lacks, are another study's known cells, not a new type."""
    frame, clusters = _suspected_frame([0.9, 0.05, 0.1, 0.0, 0.1])
    frame["open_set_rejected"] = 0.0
    assert not statistical_decision(frame, clusters).novel_cells().any()
