"""The open-set signal (one-vs-rest models with per-class thresholds) and its cluster vote."""

import numpy as np
import pandas as pd
import pytest

import scagent as sa
from scagent.novelty import (
    OPEN_SET_MAJORITY,
    fit_one_vs_rest,
    open_set_shares,
    statistical_decision,
)


def _blobs(n, centres, rng, spread=1.0):
    X = np.vstack([c + spread * rng.normal(size=(n, len(c))) for c in centres])
    y = np.repeat([f"c{i}" for i in range(len(centres))], n)
    return X.astype(np.float32), y


def test_known_classes_accept_their_cells_and_reject_a_new_one():
    rng = np.random.default_rng(0)
    centres = 6 * np.eye(3, 20)
    X, y = _blobs(150, centres, rng)
    model = fit_one_vs_rest(X, y, held_out=0.3)
    assert model.coef.shape == (3, 20) and (model.threshold >= 0.5).all()
    Xk, _ = _blobs(100, centres, np.random.default_rng(1))
    assert model.rejected(Xk).mean() <= 0.1
    new = (6 * np.eye(1, 20, 10) + rng.normal(size=(100, 20))).astype(np.float32)
    assert model.rejected(new).mean() >= 0.9


def test_held_out_thresholds_are_no_higher_than_doc_s_own_cells_thresholds():
    """A model that nearly separates its training cells sets DOC's threshold near 1; cells
    held out of fitting give the honest spread (lower thresholds, fewer false alarms)."""
    rng = np.random.default_rng(2)
    X, y = _blobs(60, 3 * np.eye(4, 200), rng, spread=1.5)  # few cells, many features
    doc = fit_one_vs_rest(X, y)
    held = fit_one_vs_rest(X, y, held_out=0.3)
    assert (held.threshold <= doc.threshold + 1e-6).all()
    assert held.threshold.mean() < doc.threshold.mean()
    Xk, _ = _blobs(60, 3 * np.eye(4, 200), np.random.default_rng(3), spread=1.5)
    assert held.rejected(Xk).mean() < doc.rejected(Xk).mean()


def test_one_class_is_a_clear_error():
    with pytest.raises(ValueError, match="at least two classes"):
        fit_one_vs_rest(np.ones((5, 3)), np.array(["a"] * 5))


def _frame(shares, n=40, seed=0):
    """Per-cell signals of clusters whose cells are rejected at the given rates (every
    other signal neutral: the conservative judge alone flags nothing)."""
    rng = np.random.default_rng(seed)
    rows, clusters = [], []
    for c, share in enumerate(shares):
        rej = rng.permutation(np.r_[np.ones(round(share * n)), np.zeros(n - round(share * n))])
        rows.append(
            pd.DataFrame(
                {
                    "uncertainty": 0.1,
                    "disagreement": 0.0,
                    "similarity_deficit": -1.0,
                    "outside_markers": 0.0,
                    "distance_ratio_pretrained": np.nan,
                    "neighbour_disagreement_pretrained": np.nan,
                    "open_set_rejected": rej,
                }
            )
        )
        clusters += [str(c)] * n
    return pd.concat(rows, ignore_index=True), np.array(clusters)


def test_a_cluster_most_of_whose_cells_are_rejected_is_novel_as_a_whole():
    frame, clusters = _frame([0.9, 0.05, 0.1, 0.0, 0.15])
    d = statistical_decision(frame, clusters)
    novel = d.novel_cells()
    assert novel[clusters == "0"].all() and not novel[clusters != "0"].any()
    assert len(d.probability) == 1 and d.probability.iloc[0] == pytest.approx(0.9)
    assert d.open_set_share.iloc[0] == pytest.approx(0.9)
    assert open_set_shares(frame, clusters)["1"] == pytest.approx(0.05)


def test_a_query_shifted_as_a_whole_is_not_called_novel():
    """Another study's known cells are rejected more everywhere: no cluster stands out
    from the query's own median, so the vote calls none."""
    frame, clusters = _frame([0.85, 0.6, 0.55, 0.7, 0.65])
    assert statistical_decision(frame, clusters).novel_cells().sum() == 0
    # a minority rejection never votes, however it compares
    frame, clusters = _frame([OPEN_SET_MAJORITY - 0.1, 0.0, 0.0, 0.0])
    assert statistical_decision(frame, clusters).novel_cells().sum() == 0
    # without the signal, the judge decides alone (as before the vote existed)
    assert statistical_decision(frame.drop(columns="open_set_rejected"), clusters).groups.size


def test_a_left_out_pancreas_type_is_found_on_real_cells(atlas, tmp_path):
    """Leave the PP cells out of a small pancreas reference: the query's PP cells are
    called unknown, the held-out known cells keep their types."""
    sa.settings.data_dir = tmp_path
    try:
        rng = np.random.default_rng(0)
        obs = atlas.obs
        pancreas = obs["tissue"].astype(str) == "pancreas"
        ref_rows, query_rows = [], []
        for t, idx in obs[pancreas].groupby("cell_type", observed=True).indices.items():
            rows = rng.permutation(np.flatnonzero(pancreas)[idx])
            if t == "pancreatic PP cell":
                query_rows += list(rows[:50])
            elif len(rows) >= 40:
                ref_rows += list(rows[:80])
                query_rows += list(rows[80:110])
        ref = atlas[np.sort(ref_rows)].copy()
        query = atlas[np.array(query_rows)].copy()
        novel = (query.obs["cell_type"].astype(str) == "pancreatic PP cell").to_numpy()
        query.obs = query.obs[["dataset"]].copy()
        sa.tl.annotate(query, reference=ref, tissue="pancreas", progress=False)
        flags = query.obs["scagent_is_novel"].to_numpy(dtype=bool)
        assert flags[novel].mean() >= 0.8
        assert flags[~novel].mean() <= 0.1
        rejected = query.obsm["scagent_novelty_signals"]["open_set_rejected"].to_numpy()
        assert rejected[novel].mean() > rejected[~novel].mean()
    finally:
        sa.settings.data_dir = None
