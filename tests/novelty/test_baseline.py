"""The called class's own marker baseline: a class whose reference cells read as a type
outside the reference does not make its query cells look new."""

import numpy as np

from scagent.novelty import class_outside_baseline


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
    base = class_outside_baseline(
        ref, ref.var_names.to_numpy(), ["name:my learnt type", mono], classes, per_class=50
    )
    # B-cell markers point outside a reference whose B cells carry another name ...
    assert base["name:my learnt type"] > 0.5
    # ... while a class the markers know reads as itself
    assert base[mono] < 0.2
    assert set(base) == {"name:my learnt type", mono}  # only the called classes
    assert class_outside_baseline(ref, ref.var_names.to_numpy(), ["CL:none"], classes) == {}
