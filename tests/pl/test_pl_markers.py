import pytest

import scagent as sa
from scagent._constants import LAYER_LOG1P
from scagent.pl._markers import marker_genes


def _recorded(adata) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rec in adata.uns["scagent"]["annotate"]["clusters"].values():
        out.setdefault(rec["call"], set()).update(rec["markers"])
    return out


def test_marker_genes_come_from_the_cluster_records(annotated):
    genes = marker_genes(annotated, n_genes=3)
    recorded = _recorded(annotated)
    assert genes, "the hand-built records hold marker genes"
    flat = [g for gs in genes.values() for g in gs]
    assert len(flat) == len(set(flat))  # each gene once
    for call, gs in genes.items():
        assert 1 <= len(gs) <= 3
        assert set(gs) <= recorded[call]
    assert {"GNLY", "NKG7"} <= set(genes["natural killer cell"])
    # the 400 genes hold no B-cell marker: that call has none to show, and is left out
    assert "B cell" in set(annotated.obs["scagent_cell_type"]) and "B cell" not in genes


def test_a_call_no_cluster_record_names_gets_its_markers_from_its_cells(annotated):
    from scagent._constants import LAYER_LOG1P

    for rec in annotated.uns["scagent"]["annotate"]["clusters"].values():
        if rec["call"] == "natural killer cell":
            rec["call"], rec["markers"] = "T cell", {}
    assert "natural killer cell" not in marker_genes(annotated)
    genes = marker_genes(
        annotated, genes=annotated.var_names, X=annotated.layers[LAYER_LOG1P], n_genes=3
    )
    assert {"GNLY", "NKG7"} & set(genes["natural killer cell"])


def test_markers_dot_plot(annotated):
    axes = sa.pl.markers(annotated, n_genes=4, show=False)
    main = axes["mainplot_ax"]
    shown = [t.get_text() for t in main.get_xticklabels()]
    expected = [g for gs in marker_genes(annotated, n_genes=4).values() for g in gs]
    assert shown == expected
    rows = [t.get_text() for t in main.get_yticklabels()]
    counts = annotated.obs["scagent_cell_type"].value_counts()
    assert rows == list(counts[counts > 0].index)  # most frequent call first


def test_markers_without_the_canonical_layer(annotated):
    """Values come from sa.pp.prepare on a copy; the user's object stays as it was."""
    with_layer = marker_genes(annotated)
    del annotated.layers[LAYER_LOG1P]
    before = set(annotated.layers)
    axes = sa.pl.markers(annotated, show=False)
    shown = [t.get_text() for t in axes["mainplot_ax"].get_xticklabels()]
    assert shown == [g for gs in with_layer.values() for g in gs]
    assert set(annotated.layers) == before


def test_markers_group_by_known_labels(annotated):
    axes = sa.pl.markers(annotated, groupby="cell_type", show=False)
    rows = {t.get_text() for t in axes["mainplot_ax"].get_yticklabels()}
    assert rows == set(annotated.obs["cell_type"].astype(str))


def test_markers_without_records_is_a_clear_error(annotated):
    for rec in annotated.uns["scagent"]["annotate"]["clusters"].values():
        rec["markers"] = {}
    annotated.obs = annotated.obs.drop(columns="scagent_cell_type_ontology_id")
    with pytest.raises(sa.InputDataError, match="No marker genes recorded"):
        sa.pl.markers(annotated, show=False)
