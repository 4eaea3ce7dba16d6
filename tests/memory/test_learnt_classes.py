"""Learnt types whose name matches no Cell Ontology term stay classes of their own."""

import numpy as np

from scagent.memory import DatasetStore, reference_data
from scagent.memory._harmonise import harmonise_reference
from scagent.memory._learnt import store_learnt
from scagent.tl._annotate import EMPTY_KEY, _jsonable


def _learn(atlas, rows, name):
    cells = atlas[rows].copy()
    cells.obs["new"] = name
    new, report = harmonise_reference(
        cells, name="learnt-types", cell_type_key="new", tissue="brain"
    )
    new.obs["cell_type"] = name
    return new, report


def test_two_unmatched_learnt_types_are_two_classes(home, atlas):
    brain = np.flatnonzero(atlas.obs["tissue"].astype(str).to_numpy() == "brain")
    store = DatasetStore()
    for rows, name in ((brain[:5], "my odd glia"), (brain[5:10], "my other glia")):
        new, report = _learn(atlas, rows, name)
        store_learnt(store, new, report, reference="atlas")
    ref = reference_data().adata
    learnt = ref.obs["cell_type"].astype(str).isin(["my odd glia", "my other glia"]).to_numpy()
    ids = ref.obs["cell_type_ontology_term_id"].astype(str).to_numpy()[learnt]
    assert set(ids) == {"name:my odd glia", "name:my other glia"}
    assert "" not in set(ref.obs["cell_type_ontology_term_id"].astype(str))


def test_empty_keys_are_stored_under_a_name():
    assert _jsonable({"a": {"": {"b": 1}, "c": None}}) == {"a": {EMPTY_KEY: {"b": 1}}}
