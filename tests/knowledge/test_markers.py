"""The bundled marker table: schema, provenance, ontology ids, gene symbols and coverage."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import pytest

import scagent as sa
from scagent.knowledge import (
    cell_ontology,
    gene_table,
    marker_parents,
    marker_sets,
    marker_table,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
COLUMNS = ["term", "term_label", "kind", "gene", "weight", "context", "parent", "source", "note"]

# common types a reference may lack, which the table must still cover
REQUIRED_TYPES = {
    "CL:0000115": "endothelial cell",
    "CL:0000057": "fibroblast",
    "CL:0000192": "smooth muscle cell",
    "CL:0000669": "pericyte",
    "CL:0000097": "mast cell",
    "CL:0000786": "plasma cell",
    "CL:0000232": "erythrocyte",
    "CL:0000556": "megakaryocyte",
    "CL:0000233": "platelet",
    "CL:0000066": "epithelial cell",
    "CL:0002079": "pancreatic ductal cell",
    "CL:0002064": "pancreatic acinar cell",
    "CL:0000312": "keratinocyte",
    "CL:0000182": "hepatocyte",
    "CL:0002062": "pulmonary alveolar type 1 cell",
    "CL:0002063": "pulmonary alveolar type 2 cell",
    "CL:0005012": "multiciliated epithelial cell",
    "CL:0000158": "club cell",
    "CL:0002633": "respiratory basal cell",
    "CL:0019031": "intestine goblet cell",
    "CL:0000584": "enterocyte",
    "CL:0000127": "astrocyte",
    "CL:0000540": "neuron",
    "CL:0000128": "oligodendrocyte",
    "CL:0002453": "oligodendrocyte precursor cell",
    "CL:0000129": "microglial cell",
    "CL:0002573": "Schwann cell",
    "CL:0000136": "adipocyte",
    "CL:0000148": "melanocyte",
    "CL:0000746": "cardiac muscle cell",
    "CL:0000784": "plasmacytoid dendritic cell",
    "CL:0000775": "neutrophil",
    "CL:0000767": "basophil",
    "CL:0000771": "eosinophil",
    "CL:0000798": "gamma-delta T cell",
    "CL:0000940": "mucosal-associated invariant T cell",
    "CL:0000815": "regulatory T cell",
}
REQUIRED_TISSUES = [
    "blood",
    "pancreas",
    "brain",
    "lung",
    "kidney",
    "colon",
    "endometrium",
    "liver",
    "skin",
    "heart",
    "bone_marrow",
]


@pytest.fixture(scope="module")
def table():
    return marker_table()


def test_schema(table):
    assert list(table.columns) == COLUMNS
    assert set(table["kind"]) == {"cell_type", "tissue", "state"}
    assert set(table["weight"]) == {1, -1}
    assert len(table) > 1000
    assert not table.duplicated(["term", "gene", "source"]).any()
    for col in ("term", "term_label", "gene", "context", "source"):
        assert (table[col].str.len() > 0).all(), col


def test_loader_returns_a_copy():
    mine = marker_table()
    mine.loc[0, "gene"] = "CHANGED"
    assert marker_table().loc[0, "gene"] != "CHANGED"


def test_every_row_has_a_source(table):
    pegasus = table["source"].str.startswith("pegasus human_")
    cited = table["source"].str.contains(r"\(\d{4}\).*doi:10\.", regex=True)
    assert (pegasus | cited).all()
    assert table.loc[pegasus, "note"].str.startswith("pegasus: ").all()
    assert (table.loc[pegasus, "source"].str.contains("BSD-3")).all()
    # both kinds of provenance are substantial
    assert pegasus.sum() > 400 and cited.sum() > 400


def test_cell_ontology_ids_are_valid_and_current(table):
    co = cell_ontology()
    cells = table[table["kind"] == "cell_type"]
    for term, label in cells[["term", "term_label"]].drop_duplicates().itertuples(index=False):
        assert term in co, term
        assert not co.terms[term].get("deprecated"), term
        assert co.label(term) == label


def test_other_kinds_are_prefixed(table):
    assert table.loc[table["kind"] == "tissue", "term"].str.startswith("tissue:").all()
    assert table.loc[table["kind"] == "state", "term"].str.startswith("state:").all()


def test_genes_are_current_human_symbols(table):
    current = gene_table().current_symbols
    unknown = sorted(set(table["gene"]) - current)
    assert not unknown


def test_no_gene_is_both_positive_and_negative_for_a_term(table):
    assert (table.groupby(["term", "gene"])["weight"].nunique() == 1).all()


def test_parents_are_ontology_ancestors_in_the_table(table):
    co = cell_ontology()
    parents = marker_parents()
    terms = set(parents)
    assert parents["CL:0000895"] == "CL:0000624"  # naive CD4 T refines CD4 T
    assert parents["CL:0000624"] == "CL:0000084"  # which refines T cell
    assert parents["CL:0002396"] == "CL:0000576"  # CD16 monocyte under monocyte, not CD14
    for term, parent in parents.items():
        if parent:
            assert parent in terms
            assert co.is_a(term, parent), (term, parent)


def test_covers_every_reference_atlas_type():
    atlas = sa.datasets.reference_atlas()
    ids = set(atlas.obs["cell_type_ontology_term_id"].astype(str))
    assert ids <= set(marker_sets("cell_type"))


def test_covers_the_labelled_pancreas_types():
    baron = ad.read_h5ad(SHARED / "labelled" / "baron2016_human_pancreas.h5ad", backed="r")
    ids = set(baron.obs["cell_type_ontology_term_id"].astype(str))
    assert len(ids) == 13
    assert ids <= set(marker_sets("cell_type"))


def test_covers_the_common_types():
    co = cell_ontology()
    sets = marker_sets("cell_type")
    for term, label in REQUIRED_TYPES.items():
        assert co.label(term) == label
        assert sum(w > 0 for w in sets[term].values()) >= 2, label


def test_tissue_signatures_and_cycling_state():
    tissues = marker_sets("tissue")
    for name in REQUIRED_TISSUES:
        assert len(tissues[f"tissue:{name}"]) >= 8, name
    assert {"MKI67", "TOP2A"} <= set(marker_sets("state")["state:cycling"])


def test_marker_sets_filters():
    pancreas = marker_sets("cell_type", context="pancreas")
    brain = marker_sets("cell_type", context="brain")
    assert "CL:0000169" in pancreas and "CL:0000169" not in brain  # beta cell
    assert "CL:0000084" in pancreas and "CL:0000084" in brain  # T cell: context "any"
    colon = marker_sets("cell_type", context="Colon")
    assert "CL:1000347" in colon and "CL:0019031" in colon  # colonocyte, intestinal goblet
    assert "CL:1000347" not in pancreas
    only = marker_sets("cell_type", genes=["CD3E", "MS4A1"])
    assert only["CL:0000084"] == {"CD3E": 1}
    assert all(set(s) <= {"CD3E", "MS4A1"} for s in only.values())
    nk = marker_sets("cell_type")["CL:0000623"]
    assert nk["CD3E"] == -1 and nk["KLRF1"] == 1


def test_marker_sets_inherit_ancestor_markers():
    own = marker_sets("cell_type")
    full = marker_sets("cell_type", inherit=True)
    naive = full["CL:0000895"]
    assert set(own["CL:0000895"]) < set(naive)
    assert naive["CD3E"] == 1 and naive["CD8A"] == -1  # from T cell and CD4 T levels


def test_marker_sets_rejects_unknown_kind():
    with pytest.raises(sa.InputDataError, match="kind"):
        marker_sets("organ")
