"""sa.tl.add_cell_type and `scagent add-type` / `plugins rollback` on real malignant cells."""

import pytest
from typer.testing import CliRunner

import scagent as sa
from scagent.cli import app
from scagent.memory import reference_data
from scagent.plugins import PluginRegistry, TrainConfig

FAST = TrainConfig(probe_epochs=40, max_epochs=1, samples_per_epoch=128, calibration_folds=2)


@pytest.fixture
def home(tmp_path):
    sa.settings.data_dir = tmp_path
    yield tmp_path
    sa.settings.data_dir = None


def test_new_type_is_learnt_stored_and_rolled_back(home):
    malignant = sa.datasets.novel_type_example()[:16].copy()
    before = reference_data()
    assert "malignant cell" not in set(before.adata.obs["cell_type"].astype(str))
    result = sa.tl.add_cell_type(malignant, "malignant cell", tissue="brain", config=FAST)
    assert result.ontology_id == "CL:0001064" and result.reference == "atlas"
    assert result.n_cells == 16 and result.n_replay > 0
    assert result.plugin == "brain@v2" and result.new_type_recall >= 0.5
    assert "scagent" not in malignant.uns  # the labelled cells are left as they were
    # every expert reads the reference: it now holds the new type, with a new version
    after = reference_data()
    assert after.version != before.version
    assert after.adata.n_obs == before.adata.n_obs + 16
    learnt = after.adata.obs["cell_type"].astype(str) == "malignant cell"
    assert learnt.sum() == 16
    assert set(after.adata.obs.loc[learnt, "tissue"].astype(str)) == {"brain"}
    # the plugin got the new class, the shipped version stays
    registry = PluginRegistry()
    plugin = registry.load("brain")
    assert "malignant cell" in plugin.labels and registry.versions("brain") == [1, 2]
    out = CliRunner().invoke(app, ["plugins", "rollback", "brain"])
    assert out.exit_code == 0, out.output
    assert "now at v1" in out.output
    assert "malignant cell" not in PluginRegistry().load("brain").labels
    out = CliRunner().invoke(app, ["plugins", "rollback", "brain"])
    assert out.exit_code == 2 and "no earlier version" in out.output


def test_bad_requests_are_refused_before_anything_is_stored(home):
    malignant = sa.datasets.novel_type_example()
    with pytest.raises(sa.InputDataError, match="too few"):
        sa.tl.add_cell_type(malignant[:5].copy(), "malignant cell", tissue="brain")
    with pytest.raises(sa.InputDataError, match="already has 'microglial cell'"):
        sa.tl.add_cell_type(malignant[:20].copy(), "microglial cell", tissue="brain")
    with pytest.raises(sa.InputDataError, match="not a Cell Ontology id"):
        sa.tl.add_cell_type(
            malignant[:20].copy(), "tumour", tissue="brain", ontology_id="CL:nope", config=FAST
        )
    assert not (home / "plugins").exists() or not any((home / "plugins").iterdir())
    assert "malignant cell" not in set(reference_data().adata.obs["cell_type"].astype(str))


def test_cli_add_type_selects_cells(home, tmp_path):
    malignant = sa.datasets.novel_type_example()
    path = tmp_path / "cells.h5ad"
    malignant.write_h5ad(path)
    out = CliRunner().invoke(
        app,
        ["add-type", str(path), "--cell-type", "x", "--tissue", "brain", "--select", "nope=1"],
    )
    assert out.exit_code == 2 and "COLUMN=VALUE" in out.output


def test_vector_memory_holding_the_reference_gets_the_new_cells(home, atlas):
    from scagent.memory import VectorMemory
    from scagent.memory._build import embed_both, store_cells
    from scagent.models import load_encoder

    brain = atlas[atlas.obs["tissue"].astype(str) == "brain"].copy()
    encoder = load_encoder()
    with VectorMemory() as mem:
        emb = embed_both(brain, brain.obs["tissue"].astype(str).to_numpy(), model=encoder)
        store_cells(mem, brain, emb, dataset="atlas")
    malignant = sa.datasets.novel_type_example()[:16].copy()
    result = sa.tl.add_cell_type(malignant, "malignant cell", tissue="brain", config=FAST)
    assert result.vectors == {
        "removed": 2 * brain.n_obs,
        "pretrained": brain.n_obs + 16,
        "tuned": brain.n_obs + 16,
    }
    with VectorMemory() as mem:
        assert mem.count("pretrained", dataset="atlas", tissue="brain") == brain.n_obs + 16
        assert mem.count("tuned", dataset="atlas", plugin_version="brain@v2") == brain.n_obs + 16
