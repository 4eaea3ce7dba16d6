import numpy as np
import pandas as pd
import pytest

import scagent as sa
from scagent.tl._report import write_report

PNG = b"\x89PNG\r\n\x1a\n"


def _section(text: str, heading: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def _markdown_table(lines: list[str]) -> pd.DataFrame:
    rows = [ln for ln in lines if ln.startswith("| ")]
    cells = [[c.strip().replace("\\|", "|") for c in r.strip("| ").split(" | ")] for r in rows]
    return pd.DataFrame(cells[2:], columns=cells[0])


def test_report_writes_every_file(annotated, tmp_path):
    before = (set(annotated.obsm), set(annotated.layers), list(annotated.obs.columns))
    folder = write_report(annotated, tmp_path / "report", labels_key="cell_type")
    assert folder == tmp_path / "report"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["calls.png", "confidence.png", "confusion.png", "markers.png", "summary.md"]
    for name in names[:-1]:
        data = (folder / name).read_bytes()
        assert data[:8] == PNG and len(data) > 10_000, name
    assert (set(annotated.obsm), set(annotated.layers), list(annotated.obs.columns)) == before

    text = (folder / "summary.md").read_text()
    assert text.startswith("# scagent annotation report")
    assert (
        f"{annotated.n_obs:,} cells annotated in 1.5 s; experts: reference, markers, plugin."
        in text
    )
    reason = annotated.uns["scagent"]["annotate"]["tissue"]["evidence"]["reason"]
    assert f"**blood**, decided for the dataset: {reason}." in text
    assert "- A note the experts left." in text
    assert "Fusion settings not fitted" in text
    for name in names[:-1]:
        assert f"![{name}]({name})" in text

    calls = _markdown_table(_section(text, "## Calls"))
    counts = annotated.obs["scagent_cell_type"].value_counts()
    counts = counts[counts > 0]
    assert list(calls["call"]) == list(counts.index)
    assert [int(c) for c in calls["cells"]] == list(counts)
    for _, row in calls.iterrows():
        m = (annotated.obs["scagent_cell_type"] == row["call"]).to_numpy()
        assert float(row["mean confidence"]) == pytest.approx(
            annotated.obs["scagent_confidence"][m].mean(), abs=0.005
        )
        agree = np.mean(annotated.obs["scagent_agreement"].to_numpy()[m] == 1)
        assert row["all experts agree"] == f"{agree:.0%}"

    clusters = _markdown_table(_section(text, "## Clusters"))
    records = annotated.uns["scagent"]["annotate"]["clusters"]
    assert sorted(clusters["cluster"]) == sorted(records)
    for _, row in clusters.iterrows():
        rec = records[row["cluster"]]
        assert row["call"] == rec["call"] and int(row["cells"]) == rec["cells"]
        assert row["markers expert"].startswith(rec["experts"]["markers"]["call"])
        for gene in rec["markers"]:
            assert gene in row["marker genes behind the call"]

    table = _markdown_table(_section(text, "## Against known labels (`cell_type`)"))
    table = table.set_index("cell_type \\ call").astype(int)
    expected = pd.crosstab(
        annotated.obs["cell_type"].astype(str), annotated.obs["scagent_cell_type"].astype(str)
    )
    assert (table["total"] == expected.sum(axis=1).reindex(table.index)).all()
    got = table.drop(columns="total")
    pd.testing.assert_frame_equal(
        got.loc[expected.index, expected.columns], expected, check_names=False, check_dtype=False
    )


def test_report_without_labels_and_again_into_the_same_folder(annotated, tmp_path):
    from scagent.tl._report import report_files

    (tmp_path / "mine.txt").write_text("the user's")
    folder = write_report(annotated, tmp_path, labels_key="cell_type")
    assert "confusion.png" in report_files(folder)
    first = (folder / "calls.png").stat().st_mtime_ns
    write_report(annotated, folder)
    text = (folder / "summary.md").read_text()
    assert "Against known labels" not in text and "confusion.png" not in text
    assert report_files(folder) == ["calls.png", "confidence.png", "markers.png", "summary.md"]
    assert (tmp_path / "mine.txt").read_text() == "the user's"
    assert (folder / "calls.png").stat().st_mtime_ns >= first
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left


def test_report_of_a_large_object_uses_a_sample(annotated, tmp_path):
    text = (
        write_report(annotated, tmp_path, labels_key="cell_type", max_cells=40, sample_cells=30)
        / "summary.md"
    ).read_text()
    assert "50 cells annotated" in text
    assert "The data hold 50 cells: the figures and the tables" in text
    assert "random sample of 30 cells (seed 0)" in text
    calls = _markdown_table(_section(text, "## Calls"))
    assert sum(int(c) for c in calls["cells"]) == 30


def test_report_of_a_backed_file(annotated, tmp_path):
    import anndata as ad

    path = tmp_path / "annotated.h5ad"
    annotated.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    try:
        folder = write_report(backed, tmp_path / "report")
    finally:
        backed.file.close()
    text = (folder / "summary.md").read_text()
    assert "experts: reference, markers, plugin." in text  # lists came back as arrays
    assert (folder / "markers.png").read_bytes()[:8] == PNG


def test_report_merges_the_records_of_a_streamed_file(annotated, tmp_path):
    """A file annotated in chunks: cluster names in .obs carry the chunk ('1:3')."""
    from scagent.pl._utils import cluster_records

    record = annotated.uns["scagent"]["annotate"]
    clusters = annotated.obs["scagent_cluster"].astype(str)
    chunk = np.where(np.arange(annotated.n_obs) < 25, "0", "1")
    annotated.obs["scagent_cluster"] = pd.Categorical([f"{k}:{c}" for k, c in zip(chunk, clusters)])
    part = {"chunk": {"index": 0, "start": 0, "cells": 25}, "clusters": record["clusters"]}
    for chunks in (
        [part, {**part, "chunk": {"index": 1}}],
        {"0": part, "1": {**part, "chunk": {"index": 1}}},
    ):
        record["streamed"] = {"chunk_size": 25, "chunks": chunks}
        merged = cluster_records(annotated)
        assert set(merged) == {f"{k}:{c}" for k in "01" for c in record["clusters"]}
    text = (write_report(annotated, tmp_path) / "summary.md").read_text()
    names = set(_markdown_table(_section(text, "## Clusters"))["cluster"])
    assert names == set(merged)


def test_report_clear_errors(annotated, tmp_path):
    with pytest.raises(sa.InputDataError, match=r"'louvain' not in adata\.obs"):
        write_report(annotated, tmp_path, labels_key="louvain")
    del annotated.uns["scagent"]["annotate"]
    with pytest.raises(sa.InputDataError, match=r"run sa.tl.annotate\(adata\)"):
        write_report(annotated, tmp_path)
