import pytest

from scagent.bench._speed import resampled_counts, speed_suite


def test_resampled_counts_are_real_cells(atlas):
    cells = resampled_counts(50, seed=1, source=atlas)
    assert cells.shape == (50, atlas.n_vars) and cells.obs_names.is_unique
    assert set(cells.obs["source_cell"]) <= set(atlas.obs_names)
    again = resampled_counts(50, seed=1, source=atlas)
    assert (cells.X != again.X).nnz == 0


@pytest.mark.slow
def test_quick_speed_suite_times_every_step():
    section = speed_suite(quick=True)
    tables = dict(section.extra_tables)
    rows = tables["End-to-end annotation"]
    assert [r["step"].split(" ")[0] for r in rows][:2] == ["sa.tl.embed", "sa.tl.annotate"]
    assert all(r["cells/s"] > 0 for r in rows)
    assert "LLM calls" in rows[-1]["breakdown (s)"]
    stream = next(v for k, v in tables.items() if "scagent annotate" in k)[0]
    assert stream["cells"] == 2000 and stream["peak RSS MB (whole process)"] > 100
