import numpy as np
import pytest
import scipy.sparse as sp

from scagent.bench._openset import OPEN_SET_PEERS, open_set_flags
from scagent.bench._tasks import _log_normalised, _variable_genes


def test_open_set_peers_flag_a_left_out_type_more_than_known_ones(atlas):
    obs = atlas.obs
    blood = obs["tissue"].astype(str) == "blood"
    types = ["B cell", "CD14+ monocyte", "natural killer cell", "CD8+ T cell"]
    rng = np.random.default_rng(0)
    rows = {
        t: rng.permutation(np.flatnonzero(blood & (obs["cell_type"].astype(str) == t)))[:120]
        for t in types
    }
    train = np.concatenate([rows[t][:80] for t in types[:3]])
    query = np.concatenate([rows[t][80:] for t in types[:3]] + [rows[types[3]][:40]])
    X = _log_normalised(sp.csr_matrix(atlas.X, dtype=np.float32))
    panel = np.sort(_variable_genes(X[train], 1000))
    labels = obs["cell_type"].astype(str).to_numpy()[train]
    flags = open_set_flags(
        X[train][:, panel], labels, X[query][:, panel], atlas.var_names[panel], seed=0
    )
    assert set(flags) == set(OPEN_SET_PEERS)
    novel = np.r_[np.zeros(120, bool), np.ones(40, bool)]
    for name, f in flags.items():
        assert f.shape == (len(query),) and f.dtype == bool, name
    # the left-out CD8+ T cells are called novel more often than the known types' cells
    for name in ("OpenMax", "threshold (max softmax)"):
        assert flags[name][novel].mean() > flags[name][~novel].mean(), name


@pytest.mark.slow
def test_quick_novelty_suite_reports_scagent_and_every_peer():
    from scagent.bench._novelty import novelty_suite

    section = novelty_suite(quick=True)
    rows = dict(section.extra_tables)["Per task"]
    methods = {r["method"] for r in rows}
    assert {"scagent (statistical judge)", *OPEN_SET_PEERS} <= methods
    assert all(0 <= r["known flagged"] <= 1 for r in rows)
    for r in rows:  # a cross-study query can hold no novel cells: its rate is NaN
        if r["novel cells"]:
            assert 0 <= r["novel flagged"] <= 1, r
        else:
            assert r["novel flagged"] != r["novel flagged"], r
    kinds = {r["kind"] for r in rows}
    assert {"brain", "leave-one-type-out", "cross-study"} <= kinds
