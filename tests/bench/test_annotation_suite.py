import numpy as np
import pytest

from scagent.bench import Section
from scagent.bench._annotation import annotation_suite, load_benchmark_atlas
from scagent.bench._peers import KNNPCAPeer, LogRegPeer, MLPPeer
from scagent.bench._report import write_report


def test_intersection_gene_space_is_measured_everywhere():
    union = load_benchmark_atlas("union")
    inter = load_benchmark_atlas("intersection")
    assert inter.n_vars < union.n_vars
    cols = [c for c in union.var.columns if c.startswith("measured_in_")]
    assert inter.var[cols].all(axis=None)
    expm1_sums = np.expm1(union.X[:20].toarray()).sum(1)
    np.testing.assert_allclose(expm1_sums, 1e4, rtol=1e-3)


@pytest.mark.slow  # about 2-4 minutes of real peer training
def test_quick_suite_runs_real_peers_and_writes_report(tmp_path):
    section = annotation_suite(peers=(LogRegPeer, KNNPCAPeer, MLPPeer), quick=True)
    assert isinstance(section, Section)
    methods = [r["method"] for r in section.rows]
    assert methods == ["logistic regression", "kNN on PCA", "MLP (2 hidden layers)"]
    for row in section.rows:
        # real peers on real cells clear chance (29 types) by far
        assert row["accuracy"] > 0.6
        assert 0 < row["macro_f1"] <= 1
        assert set(row["per_tissue_weighted_f1"]) == {
            "blood",
            "brain",
            "colon",
            "endometrium",
            "kidney",
            "lung",
            "pancreas",
        }
        assert row["train_s"] > 0 and row["predict_s"] > 0
    text = write_report([section], tmp_path / "bench.md", command="test")
    assert "logistic regression" in text
    md = (tmp_path / "bench.md").read_text()
    assert "| method |" in md.replace("| protocol | genes | method |", "| method |")
    assert (tmp_path / "figures" / "cell_type_annotation_f1.png").stat().st_size > 1000
    assert (tmp_path / "figures" / "cell_type_annotation_per_tissue.png").exists()
