"""The query's own clusters and neighbour graph."""

import numpy as np

import scagent as sa
from scagent.experts import query_structure


def test_clusters_follow_cell_types_and_the_graph_is_row_normalised(atlas):
    pbmc = atlas[atlas.obs["dataset"] == "pbmc3k"][::3].copy()
    sa.pp.prepare(pbmc)
    s = query_structure(pbmc.layers["scagent_log1p_cp10k"], seed=0)
    assert s.graph.shape == (pbmc.n_obs, pbmc.n_obs)
    np.testing.assert_allclose(np.asarray(s.graph.sum(1)).ravel(), 1, rtol=1e-5)
    assert s.graph.diagonal().sum() == 0
    assert 3 <= s.info["n_clusters"] <= 30
    # clusters are nearly pure in the broad types
    broad = pbmc.obs["cell_type"].astype(str).str.replace(r"(naive|memory) ", "", regex=True)
    purity = broad.groupby(s.clusters).agg(lambda x: x.value_counts().iloc[0] / len(x)).mean()
    assert purity > 0.8
    again = query_structure(pbmc.layers["scagent_log1p_cp10k"], seed=0)
    assert (again.clusters == s.clusters).all()  # reproducible for a seed


def test_given_groups_and_tiny_inputs(atlas):
    small = atlas[:20].copy()
    sa.pp.prepare(small)
    s = query_structure(small.layers["scagent_log1p_cp10k"])
    assert set(s.clusters) == {"0"} and s.info["clusters"].startswith("one cluster")
    g = query_structure(small.layers["scagent_log1p_cp10k"], groups=np.arange(20) % 2)
    assert set(g.clusters) == {"0", "1"} and g.info["clusters"] == "given"
    one = query_structure(small.layers["scagent_log1p_cp10k"][:1])
    assert one.graph.shape == (1, 1) and len(one.clusters) == 1
