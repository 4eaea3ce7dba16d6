"""Plugins trained on a stored dataset (``scagent plugins train --reference NAME``): where
they live, annotation with them, staleness after a replace, removal with the dataset."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from typer.testing import CliRunner

import scagent as sa
from scagent.cli import app
from scagent.experts import EXPERTS
from scagent.memory import DatasetStore, dataset_plugins, dataset_plugins_path, reference_data
from scagent.memory._reference import resolve_reference
from scagent.plugins import TrainConfig, train_dataset_plugins

runner = CliRunner()
NAME = "lab_atlas"


def _add(path, *extra: str) -> None:
    added = runner.invoke(
        app,
        ["memory", "add", str(path), "--cell-type-key", "label", "--tissue-key", "organ", *extra],
    )
    assert added.exit_code == 0, added.output


@pytest.fixture
def lab_store(home, lab_file) -> str:
    """``home`` with the lab file (80 cells, blood and pancreas) stored as ``lab_atlas``."""
    _add(lab_file)
    return NAME


def _query(atlas, lab_file, n: int = 100):
    """Atlas cells of the lab's tissues and types that are not in the lab file."""
    lab = sa.read(lab_file)
    pick = atlas.obs["tissue"].isin(["blood", "pancreas"])
    pick &= atlas.obs["cell_type"].isin(set(lab.obs["label"].astype(str)))
    pick &= ~atlas.obs_names.str.split(":").str[1].isin(lab.obs_names)
    rows = np.random.default_rng(1).choice(np.flatnonzero(pick.to_numpy()), n, replace=False)
    return atlas[np.sort(rows)].copy()


def test_dataset_plugins_annotate_and_go_with_the_dataset(
    lab_store, lab_file, atlas, home, tiny_config, tmp_path, caplog
):
    entry = DatasetStore().entry(lab_store)
    # none trained yet: the plugin expert is left out, the note says what to run
    _, plugins, experts, note = resolve_reference(lab_store, experts=EXPERTS)
    assert plugins is None and "plugin" not in experts
    assert f"scagent plugins train --reference {lab_store}" in note

    saved = train_dataset_plugins(lab_store, config=tiny_config, seed=0, progress=False)
    folder = home / "plugins" / "references" / lab_store
    assert dataset_plugins_path(lab_store) == folder
    assert sorted(p.name for p in saved) == ["blood", "pancreas", "tissue"]
    registry = dataset_plugins(lab_store)
    assert registry is not None and registry.roots == [folder]
    assert registry.names() == ["blood", "pancreas", "tissue"]
    for name in registry.names():
        record = registry.manifest(name)["training"]["reference_dataset"]
        assert record == {
            "name": lab_store,
            "sha256": entry["sha256"],
            "reference_version": entry["reference_version"],
            "store_version": 1,
        }
    # the plugins learnt the stored labels, an unmatched one under its own name
    stored = reference_data(lab_store).adata.obs
    classes = set(stored["cell_type_ontology_term_id"].astype(str))
    slots = {
        oid or f"name:{lab}"
        for t in ("blood", "pancreas")
        for lab, oid in zip(registry.load(t).labels, registry.load(t).ontology_ids)
    }
    assert slots == classes and "name:my weird cells" in slots
    assert registry.load("tissue").labels == ["blood", "pancreas"]
    # the default (atlas) plugins folder is untouched
    assert not (home / "plugins" / "blood").exists()

    # annotating against the dataset now runs its plugins
    query = _query(atlas, lab_file)
    sa.tl.annotate(query, reference=lab_store)
    record = query.uns["scagent"]["annotate"]
    assert "plugin" in record["experts"]
    used = record["expert_info"]["plugin"]["plugins"]
    assert set(used) <= {"blood", "pancreas"} and used
    assert not any("alone" in n for n in record["notes"])
    plugin_calls = set(query.obs["scagent_call_plugin"].astype(str)) - {""}
    assert plugin_calls and plugin_calls <= set(record["class_names"])
    assert set(record["classes"]) == classes

    # replaced by other content under the same name: the old plugins are not used
    lab = sa.read(lab_file)
    smaller = tmp_path / "lab_atlas.h5ad"
    lab[10:].copy().write_h5ad(smaller)
    _add(smaller, "--replace")
    with caplog.at_level(logging.WARNING, logger="scagent"):
        _, plugins, experts, note = resolve_reference(lab_store, experts=EXPERTS)
    assert plugins is None and "plugin" not in experts
    assert f"scagent plugins train --reference {lab_store}" in note
    assert "not trained on the current content" in caplog.text
    assert folder.is_dir()  # kept until retrained or removed
    # training again starts afresh: the stale plugins are removed first
    quick = TrainConfig(probe_epochs=5, max_epochs=0, val_fraction=0)
    train_dataset_plugins(
        lab_store, tissues=["pancreas"], tissue_plugin=False, config=quick, progress=False
    )
    registry = dataset_plugins(lab_store)
    assert registry.names() == ["pancreas"] and registry.versions("pancreas") == [1]
    record = registry.manifest("pancreas")["training"]["reference_dataset"]
    assert record["store_version"] == 2

    # removing the dataset removes its plugins
    removed = runner.invoke(app, ["memory", "remove", lab_store])
    assert removed.exit_code == 0, removed.output
    assert f"deleted its plugins ({folder})" in removed.output
    assert not folder.exists()
    assert not list(folder.parent.glob(".removed-*"))


def test_plugins_train_reference_command(lab_store, home, tmp_path):
    # one tissue, the probe only (no fine-tuning): the command's path, quickly
    args = ["plugins", "train", "--reference", lab_store, "--tissue", "pancreas"]
    result = runner.invoke(app, [*args, "--max-epochs", "0", "--no-tissue-plugin"])
    assert result.exit_code == 0, result.output
    folder = home / "plugins" / "references" / lab_store
    assert f"saved to {folder}" in result.output
    assert f"scagent annotate FILE --reference {lab_store}" in result.output
    registry = dataset_plugins(lab_store)
    assert registry is not None and registry.names() == ["pancreas"]
    manifest = registry.manifest("pancreas")
    assert manifest["training"]["reference_dataset"]["name"] == lab_store
    assert manifest["training"]["label_key"] == "cell_type"  # the store's columns
    _, plugins, experts, note = resolve_reference(lab_store, experts=EXPERTS)
    assert plugins.roots == [folder] and "plugin" in experts and note is None


def test_plugins_train_reference_errors(lab_store, lab_file, home):
    both = runner.invoke(app, ["plugins", "train", lab_file, "--reference", lab_store])
    assert both.exit_code == 2
    assert "Give either FILE" in both.output and "not both" in both.output
    assert "Traceback" not in both.output
    missing = runner.invoke(app, ["plugins", "train", "--reference", "nope"])
    assert missing.exit_code == 2
    assert "No dataset 'nope'" in missing.output and lab_store in missing.output
    atlas = runner.invoke(app, ["plugins", "train", "--reference", "atlas"])
    assert atlas.exit_code == 2 and "bundled atlas" in atlas.output
    assert not (home / "plugins").exists()  # nothing was written
