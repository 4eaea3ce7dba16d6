"""The real tools' results: the marker genes behind each call come from the annotation."""

import numpy as np
import pytest

import scagent as sa
from scagent.agent import answer_text
from scagent.agent._tools import call_markers


@pytest.fixture(scope="module")
def annotated_file(atlas, reference, tiny_registry, tmp_path_factory):
    """Real atlas cells outside the small reference, annotated and written to .h5ad."""
    obs = atlas.obs
    ok = obs["dataset"].isin(["pbmc3k"]) & ~obs.index.isin(reference.obs_names)
    ok &= obs["cell_type"].isin(set(reference.obs["cell_type"].astype(str)))
    rows = np.flatnonzero(ok.to_numpy())[::7][:120]
    query = atlas[rows].copy()
    home = tmp_path_factory.mktemp("home")
    sa.settings.data_dir = home
    try:
        sa.tl.annotate(query, reference=reference, plugins=tiny_registry)
    finally:
        sa.settings.data_dir = None
    path = home / "annotated.h5ad"
    query.write_h5ad(path)
    return path, query


def test_marker_genes_behind_each_call_are_the_recorded_ones(annotated_file):
    path, query = annotated_file
    behind = call_markers(path, n_genes=3)
    assert behind, "no call has recorded marker genes"
    records = query.uns["scagent"]["annotate"]["clusters"]
    calls = set(query.obs["scagent_cell_type"].astype(str))
    for call, genes in behind.items():
        assert call in calls
        assert 0 < len(genes) <= 3 and len(set(genes)) == len(genes)
        recorded = {g for rec in records.values() if rec["call"] == call for g in rec["markers"]}
        assert set(genes) <= recorded  # never a gene the annotation did not record
        assert set(genes) <= set(query.var_names)
    # best first: the largest cluster of a call lists its genes by lift over the other cells
    call, genes = next(iter(behind.items()))
    best = max((rec for rec in records.values() if rec["call"] == call), key=lambda r: r["cells"])
    lift = {g: v["mean_in_cluster"] - v["mean_elsewhere"] for g, v in best["markers"].items()}
    ranked = sorted(lift, key=lift.get, reverse=True)
    assert genes[: len(ranked)] == ranked[: len(genes)]


def test_the_answer_names_them_and_nothing_else(annotated_file):
    path, query = annotated_file
    behind = call_markers(path)
    counts = query.obs["scagent_cell_type"].astype(str).value_counts()
    rows = [
        {
            "cell_type": c,
            "tissue": "blood",
            "cells": int(n),
            "mean_confidence": 0.9,
            "markers": behind.get(c, []),
        }
        for c, n in counts.items()
    ]
    state = {
        "request": {"requirement": "get_cell_w_tissue"},
        "results": {
            "annotate": {
                "n_cells": query.n_obs,
                "cell_types": rows,
                "tissues": {"blood": query.n_obs},
                "out": str(path),
            }
        },
    }
    text = answer_text(state)
    for line in text.splitlines():
        if not line.startswith("- "):
            continue
        call = line[2:].split(":")[0]
        if behind.get(call):
            assert line.endswith(f"marker genes behind it: {', '.join(behind[call])}")
        else:
            assert "marker" not in line


def test_no_annotation_record_no_genes(tmp_path, pbmc_small):
    pbmc_small.write_h5ad(tmp_path / "plain.h5ad")
    assert call_markers(tmp_path / "plain.h5ad") == {}
