from scagent.bench._plugins import plugins_suite, resampled_counts
from scagent.bench._report import write_report


def test_resampled_counts_are_real_cells():
    cells = resampled_counts(50, seed=1)
    assert cells.shape[0] == 50 and cells.obs_names.is_unique
    assert (cells.X.data == cells.X.data.round()).mean() > 0.5  # counts, mostly integers
    again = resampled_counts(50, seed=1)
    assert (cells.X != again.X).nnz == 0


def test_quick_plugins_suite_runs_everything_and_reports(tmp_path):
    section = plugins_suite(quick=True)
    methods = {r["method"] for r in section.rows}
    assert {"scagent (tissue assigned)", "scagent (tissue=blood)", "logistic regression"} <= methods
    assert "scagent (pancreas plugin)" in methods
    held_out = [r for r in section.rows if r["protocol"].startswith("held-out")]
    assert all(0 < r["coverage"] < 1 for r in held_out)  # CD34+ cannot be scored
    assert held_out[0]["tissue_accuracy"] > 0.5  # PBMCs are mostly sent to the blood plugin
    tables = dict(section.extra_tables)
    mixing = tables["Batch mixing"]
    assert len(mixing) == 9 and all(0 <= r["iLISI (0-1, higher = mixed)"] <= 1 for r in mixing)
    speed = next(v for k, v in tables.items() if k.startswith("Speed"))
    assert [r["step"].split(",")[0] for r in speed] == [
        "sa.tl.embed (pretrained encoder)",
        "sa.tl.annotate",
        "sa.tl.annotate",
    ]
    assert all(r["cells/s"] > 0 for r in speed)
    switch = tables["Plugin switching on one loaded encoder"]
    assert switch[0]["ms"] < 100
    stream = next(v for k, v in tables.items() if "scagent annotate" in k)[0]
    assert stream["cells"] == 2000 and stream["peak RSS MB (whole process)"] > 100
    write_report([section], tmp_path / "b.md", command="test")
    assert (tmp_path / "figures" / "embeddings_umap.png").stat().st_size > 10_000
    assert "Batch mixing" in (tmp_path / "b.md").read_text()
