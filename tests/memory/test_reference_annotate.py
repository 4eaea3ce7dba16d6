"""Annotating against a user's stored dataset alone (``reference=NAME``, ``--reference``)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from typer.testing import CliRunner

import scagent as sa
from scagent.cli import app
from scagent.memory import reference_data

runner = CliRunner()


@pytest.fixture
def lab_store(home, lab_file) -> str:
    """``home`` with the lab file added to the dataset store as ``lab_atlas``."""
    added = runner.invoke(
        app, ["memory", "add", lab_file, "--cell-type-key", "label", "--tissue-key", "organ"]
    )
    assert added.exit_code == 0, added.output
    return "lab_atlas"


def test_annotate_against_a_stored_reference(lab_store, lab_file, atlas, tmp_path):
    lab = sa.read(lab_file)
    lab_types = set(lab.obs["label"].astype(str))
    # query: atlas cells of the lab's tissues and types that are not in the lab file
    pick = atlas.obs["tissue"].isin(["blood", "pancreas"]) & atlas.obs["cell_type"].isin(lab_types)
    pick &= ~atlas.obs_names.str.split(":").str[1].isin(lab.obs_names)
    rows = np.random.default_rng(1).choice(np.flatnonzero(pick.to_numpy()), 150, replace=False)
    query = atlas[np.sort(rows)].copy()

    sa.tl.annotate(query, reference=lab_store)
    record = query.uns["scagent"]["annotate"]
    # the label space is the stored dataset's own, its unmatched label a class of its own
    stored = reference_data(lab_store).adata.obs
    assert set(record["classes"]) == set(stored["cell_type_ontology_term_id"].astype(str))
    assert "name:my weird cells" in record["classes"]
    assert "my weird cells" in record["class_names"]
    # (cells no stored type fits may be called "unknown" by the novelty step)
    assert set(query.obs["scagent_cell_type"].astype(str)) <= {*record["class_names"], "unknown"}
    # against that reference alone: the default (atlas) plugins do not run
    assert "plugin" not in record["experts"]
    assert any("'lab_atlas' alone" in n for n in record["notes"])
    # the annotation's own calls (before novelty): 80 reference cells of 16 types, so
    # about half right (one in 16 by chance); novelty leaves most cells named
    called = query.obs["scagent_cell_type_ontology_id_if_known"].astype(str).to_numpy()
    truth = query.obs["cell_type_ontology_term_id"].astype(str).to_numpy()
    assert (called == truth).mean() > 0.45
    known = query.obs["scagent_cell_type"].astype(str).to_numpy() != "unknown"
    assert known.sum() >= 0.6 * query.n_obs

    # the command line: the same reference by name; an unknown name is one clear line
    path = tmp_path / "query.h5ad"
    query_raw = atlas[np.sort(rows)].copy()
    query_raw.write_h5ad(path)
    out = tmp_path / "annotated.h5ad"
    result = runner.invoke(app, ["annotate", str(path), "-o", str(out), "--reference", lab_store])
    assert result.exit_code == 0, result.output
    calls = set(ad.read_h5ad(out).obs["scagent_cell_type_ontology_id"].astype(str))
    assert calls <= {*record["classes"], "unknown", ""}
    missing = runner.invoke(
        app, ["annotate", str(path), "-o", str(tmp_path / "x.h5ad"), "--reference", "nope"]
    )
    assert missing.exit_code == 2
    assert "No dataset 'nope'" in missing.output and "lab_atlas" in missing.output
