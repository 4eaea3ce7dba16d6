"""Bundled knowledge: the gene table and the Cell Ontology."""

from __future__ import annotations

import pytest

from scagent.knowledge import CellOntology, GeneTable, cell_ontology, gene_table

B_CELL, T_CELL, CELL = "CL:0000236", "CL:0000084", "CL:0000000"
NAIVE_CD4_T = "CL:0000895"


@pytest.fixture(scope="module")
def table() -> GeneTable:
    return gene_table()


@pytest.fixture(scope="module")
def onto() -> CellOntology:
    return cell_ontology()


# --- gene table ------------------------------------------------------------------------------


def test_gene_table_is_cached(table):
    assert gene_table() is table


def test_gene_table_sizes(table):
    assert len(table.current_symbols) > 40_000
    assert len(table.ensembl_to_symbol) > 40_000
    assert len(table.symbol_to_ensembl) > len(table.current_symbols)  # aliases too
    assert len(table.mouse_symbols) > 15_000


def test_ensembl_and_symbol_lookups(table):
    assert table.ensembl_to_symbol["ENSG00000075624"] == "ACTB"
    assert table.symbol_to_ensembl["ACTB"] == "ENSG00000075624"
    assert table.symbol_to_ensembl["CD3E"] == "ENSG00000198851"
    assert table.ensembl_to_symbol[table.symbol_to_ensembl["PTPRC"]] == "PTPRC"


def test_to_current_symbol(table):
    assert table.to_current_symbol("ACTB") == "ACTB"
    assert table.to_current_symbol("H2AFZ") == "H2AZ1"  # hg19 alias
    assert table.to_current_symbol("KIAA0101") == "PCLAF"
    assert table.to_current_symbol("SEPT7") == "SEPTIN7"
    assert table.to_current_symbol("not_a_gene") is None
    assert table.to_current_symbol("actb") is None  # human symbols are case-sensitive


def test_current_symbols_map_to_themselves(table):
    """A current symbol must never be redirected by an alias of the same text."""
    wrong = [s for s in table.current_symbols if table.to_current_symbol(s) != s]
    assert wrong == []


def test_mouse_symbols_and_orthologues(table):
    assert {"Actb", "Gcg", "Ins1", "Cd3e"} <= table.mouse_symbols
    assert "ACTB" not in table.mouse_symbols
    assert table.mouse_to_human["Actb"] == "ACTB"
    assert table.mouse_to_human["Cd3e"] == "CD3E"


# --- cell ontology ---------------------------------------------------------------------------


def test_ontology_is_cached_and_complete(onto):
    assert cell_ontology() is onto
    assert len(onto) == 3596
    assert B_CELL in onto
    assert "CL:9999999" not in onto


def test_label(onto):
    assert onto.label(B_CELL) == "B cell"
    assert onto.label(T_CELL) == "T cell"
    assert onto.label(NAIVE_CD4_T) == "naive thymus-derived CD4-positive, alpha-beta T cell"


def test_label_unknown_id(onto):
    with pytest.raises(
        KeyError, match=r"'B cell' is not a Cell Ontology id \(expected e\.g\. 'CL:0000236'\)"
    ):
        onto.label("B cell")


def test_find(onto):
    assert onto.find("B cell") == B_CELL
    assert onto.find("  b CELL ") == B_CELL  # case and surrounding space do not matter
    assert onto.find("B lymphocyte") == B_CELL  # a synonym
    assert onto.find("T cell") == T_CELL
    assert onto.find("not a cell type") is None


def test_find_skips_deprecated_terms(onto):
    deprecated = [t for t, rec in onto.terms.items() if rec.get("deprecated")]
    for tid in deprecated:
        found = onto.find(onto.terms[tid]["label"])
        assert found is None or not onto.terms[found].get("deprecated")


def test_is_a(onto):
    assert onto.is_a(NAIVE_CD4_T, T_CELL)
    assert onto.is_a(B_CELL, CELL)
    assert onto.is_a(B_CELL, B_CELL)
    assert not onto.is_a(B_CELL, T_CELL)
    assert not onto.is_a(T_CELL, NAIVE_CD4_T)  # not the other way round


def test_ancestors_have_distances(onto):
    anc = onto.ancestors(NAIVE_CD4_T)
    assert anc[T_CELL] == 3
    assert anc[CELL] == max(anc.values())
    assert all(isinstance(d, int) and d >= 1 for d in anc.values())
    anc["CL:x"] = 1  # a copy: the ontology itself is not changed
    assert "CL:x" not in onto.ancestors(NAIVE_CD4_T)
