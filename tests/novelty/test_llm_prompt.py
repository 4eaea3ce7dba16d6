"""The LLM judge's prompt: the group's evidence in compact form, the shared part first."""

import json

from scagent.novelty import compact_evidence, novelty_prompt

EVIDENCE = {
    "cells": 38,
    "cluster": "2",
    "tissue": "brain",
    "annotated_as": {"pancreatic beta cell": 0.9, "pancreatic delta cell": 0.1},
    "nearest_known_type": "pancreatic beta cell",
    "nearest_known_type_id": "CL:0000169",
    "neighbours": {
        "pretrained": {
            name: {"share": share, "neighbours": 10, "mean_distance": 3e-4, "ontology_id": "CL:1"}
            for name, share in [
                ("pancreatic beta cell", 0.81),
                ("pancreatic alpha cell", 0.08),
                ("oligodendrocyte", 0.04),
                ("B cell", 0.01),
            ]
        }
    },
    "distance_to_class_centroid": {
        "pretrained": {
            "median_over_class_q95": 0.4531,
            "q90_over_class_q95": 1.02,
            "share_beyond_q95": 0.13,
        }
    },
    "signals": {"uncertainty": 0.2963, "outside_markers": 0.9961, "open_set_rejected": 1.0},
    "statistical_probability_novel": 0.996,
    "markers_suggest": {
        "cell_type": "oligodendrocyte precursor cell",
        "ontology_id": "CL:0002453",
        "mean_probability": 0.9721,
        "outside_reference_mass": 0.996,
    },
    "top_genes_vs_nearest_type": {
        g: {"mean_in_group": 1.7 - i / 10, "mean_in_known": 0.5}
        for i, g in enumerate(["OLIG2", "SOX2", "PDGFRA", "CCND1", "ID1", "CD82", "EEF1G"])
    },
}


def test_compact_evidence_keeps_what_the_judge_needs_in_few_characters():
    compact = compact_evidence(EVIDENCE)
    assert compact["neighbours"]["pretrained"] == {
        "pancreatic beta cell": 0.81,
        "pancreatic alpha cell": 0.08,
        "oligodendrocyte": 0.04,
    }  # the three main types, by share
    assert compact["distance_to_class_centroid"] == {"pretrained": 0.45}
    assert compact["signals"]["outside_markers"] == 1.0
    assert compact["markers_suggest"] == {
        "cell_type": "oligodendrocyte precursor cell",
        "mean_probability": 0.97,
    }
    assert compact["top_genes_vs_nearest_type"].startswith("OLIG2 1.7 vs 0.5, SOX2 1.6 vs 0.5")
    assert "EEF1G" not in compact["top_genes_vs_nearest_type"]  # five genes
    text = json.dumps(compact)
    assert "CL:" not in text and "statistical" not in text  # ids and the other judge left out
    assert len(text) < 0.5 * len(json.dumps(EVIDENCE))


def test_prompt_puts_the_shared_part_first_and_the_group_last():
    known = ["B cell", "oligodendrocyte", "pancreatic beta cell"]
    a = novelty_prompt(EVIDENCE, known)
    b = novelty_prompt({**EVIDENCE, "cells": 5}, known)
    head = a[: a.rfind("\n\n")]
    assert b.startswith(head)  # instruction, known types and examples: evaluated once
    assert "B cell, oligodendrocyte, pancreatic beta cell" in head
    assert json.dumps(compact_evidence(EVIDENCE)) in a[len(head) :]
