"""The called class's own marker baselines: a class whose reference cells read as a type
outside the reference does not make its query cells look new, and a class the markers
know confirms itself on its own cells."""

import numpy as np

from scagent.novelty import class_marker_baseline


def test_a_class_whose_own_cells_read_as_another_type_has_a_high_baseline(atlas):
    blood = atlas[atlas.obs["tissue"].astype(str) == "blood"]
    rng = np.random.default_rng(0)
    rows = np.concatenate(
        [
            rng.permutation(np.flatnonzero(blood.obs["cell_type"].astype(str) == t))[:80]
            for t in ("B cell", "CD14+ monocyte", "natural killer cell")
        ]
    )
    ref = blood[np.sort(rows)].copy()
    ids = ref.obs["cell_type_ontology_term_id"].astype(str).to_numpy().copy()
    ids[ref.obs["cell_type"].astype(str).to_numpy() == "B cell"] = "name:my learnt type"
    ref.obs["cell_type_ontology_term_id"] = ids
    classes = sorted(set(ids))
    mono = ids[ref.obs["cell_type"].astype(str).to_numpy() == "CD14+ monocyte"][0]
    base = class_marker_baseline(
        ref, ref.var_names.to_numpy(), ["name:my learnt type", mono], classes, per_class=50
    )
    # B-cell markers point outside a reference whose B cells carry another name ...
    assert base.loc["name:my learnt type", "outside"] > 0.5
    # ... and a name without an ontology term has no marker support of its own ...
    assert base.loc["name:my learnt type", "support"] == 0
    # ... while a class the markers know reads as itself
    assert base.loc[mono, "outside"] < 0.2
    assert base.loc[mono, "support"] > 0.8
    assert set(base.index) == {"name:my learnt type", mono}  # only the called classes
    assert class_marker_baseline(ref, ref.var_names.to_numpy(), ["CL:none"], classes).empty
