"""The consensus term and the tissue decision."""

import numpy as np
import pandas as pd

from scagent.experts import ACROSS, ExpertCall, decide_tissue
from scagent.experts._consensus import consensus_terms

NAIVE_CD4, MEMORY_CD4, B = "CL:0000895", "CL:0000897", "CL:0000236"


def test_consensus_climbs_to_the_common_ancestor_of_undecided_siblings():
    classes = [NAIVE_CD4, MEMORY_CD4, B]
    P = np.array([[0.95, 0.04, 0.01], [0.5, 0.45, 0.05], [0.4, 0.3, 0.3]])
    terms, mass = consensus_terms(P, P.argmax(1), classes)
    assert terms[0] == NAIVE_CD4 and mass[0] >= 0.9
    # naive vs memory undecided: a CD4-positive ancestor covering both
    from scagent.knowledge import cell_ontology

    onto = cell_ontology()
    assert terms[1] not in ("", NAIVE_CD4, MEMORY_CD4)
    assert onto.is_a(NAIVE_CD4, terms[1]) and onto.is_a(MEMORY_CD4, terms[1])
    assert not onto.is_a(B, terms[1])
    assert terms[2] == "" or onto.is_a(B, terms[2])  # only a very broad term would cover


def _call(probs, terms):
    return ExpertCall("reference", np.asarray(probs, float), terms, terms)


TISSUES = {"blood": {"mono", "T"}, "pancreas": {"beta", "T"}}


def test_tissue_given_dataset_and_across():
    clusters = np.array(["a"] * 6 + ["b"] * 4)
    probs = [[0.8, 0.1, 0.1]] * 6 + [[0.1, 0.1, 0.8]] * 4  # mono / beta / T
    call = _call(probs, ["mono", "beta", "T"])
    given = decide_tissue(call, TISSUES, clusters, given="pancreas")
    assert given.how == "given" and set(given.per_cell) == {"pancreas"}
    d = decide_tissue(call, TISSUES, clusters)
    assert d.how == "dataset" and d.tissue == "blood"  # mono + T fit blood
    assert set(d.per_cell) == {"blood"}
    assert d.evidence["dataset_fit"]["blood"] > d.evidence["dataset_fit"]["pancreas"]
    markers = pd.DataFrame({"brain": [0.9, 0.9], "blood": [0.1, 0.1]}, index=["a", "b"])
    across = decide_tissue(call, TISSUES, clusters, markers=markers)
    assert across.how == ACROSS and set(across.per_cell) == {ACROSS}
    assert "brain" in across.evidence["reason"]


def test_tissue_per_cluster_when_none_fits_the_dataset():
    clusters = np.array(["a"] * 5 + ["b"] * 5)
    probs = [[0.9, 0.05, 0.05]] * 5 + [[0.05, 0.9, 0.05]] * 5
    d = decide_tissue(_call(probs, ["mono", "beta", "T"]), TISSUES, clusters)
    assert d.how == "clusters"
    assert list(d.per_cell[:5]) == ["blood"] * 5 and list(d.per_cell[5:]) == ["pancreas"] * 5
