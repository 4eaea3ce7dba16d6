"""Novelty inside a plain annotation: with ``build_memory`` the reference is embedded first,
so detect_novel reads the nearest known cells and the query's shift; without it, the
annotation says which evidence it lacked and how to add it."""

import anndata as ad
import pytest

import scagent as sa


@pytest.fixture(scope="module")
def files(novel_query, tmp_path_factory):
    """A small labelled reference (four blood types, the brain's oligodendrocytes) and a
    query of held-out cells of those types plus malignant cells, as a file."""
    folder = tmp_path_factory.mktemp("memory")
    sa.settings.data_dir = folder / "home"
    keep = {"B cell", "CD14+ monocyte", "natural killer cell", "naive CD4+ T cell"}

    def split(tissue, name, _n):
        if (tissue == "blood" and name in keep) or name == "oligodendrocyte":
            return slice(0, 30), slice(30, 40)
        return None

    ref, query, _ = novel_query(split, n_malignant=40, seed=1)
    path = folder / "query.h5ad"
    query.write_h5ad(path)
    yield ref, query, path, folder
    sa.settings.data_dir = None


def test_annotate_with_build_memory_reads_neighbours_and_the_query_shift(files):
    ref, query, _, _ = files
    with_memory = sa.tl.annotate(query, reference=ref, build_memory=True, copy=True)
    info = with_memory.uns["scagent"]["novelty"]
    assert info["spaces"] and "pretrained" in list(info["spaces"])
    assert info["note"] == ""
    assert info["query_shift"] is not None and info["query_shift"] > 0
    signals = with_memory.obsm["scagent_novelty_signals"]
    assert signals["distance_ratio_pretrained"].notna().all()
    assert signals["class_median_ratio_pretrained"].between(0, 1).all()
    without = sa.tl.annotate(query, reference=ref, copy=True)  # default: no embedding
    info = without.uns["scagent"]["novelty"]
    assert len(info["spaces"]) == 0 and info.get("query_shift") is None  # not measured
    assert "scagent memory build" in info["note"] and "--build-memory" in info["note"]


def test_annotate_file_reports_what_novelty_lacked(files):
    ref, _, path, folder = files
    table = sa.tl.annotate_file(path, folder / "plain.h5ad", reference=ref)
    assert "vector memory does not hold this reference" in table.attrs["novelty_note"]
    table = sa.tl.annotate_file(path, folder / "full.h5ad", reference=ref, build_memory=True)
    assert table.attrs["novelty_note"] == ""
    out = ad.read_h5ad(folder / "full.h5ad")
    assert out.uns["scagent"]["annotate"]["novelty"]["query_shift"] is not None
