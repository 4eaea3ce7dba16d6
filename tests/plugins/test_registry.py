import json

import pytest
import torch

from scagent.nn import MoELoRAConfig
from scagent.plugins import Plugin, PluginError, PluginRegistry


def _plugin(name="blood", labels=("a", "b"), seed=0):
    g = torch.Generator().manual_seed(seed)
    return Plugin(
        name=name,
        kind="cell_type",
        tissue=name,
        labels=list(labels),
        ontology_ids=["CL:0000236", ""][: len(labels)],
        lora=MoELoRAConfig(),
        head_hidden=2,
        base_model="default",
        base_sha256="0" * 64,
        state={"head.out.weight": torch.randn(200, 4, generator=g)},
        training={"n_train": 10},
        metrics={"macro_f1": 0.5},
    )


def test_save_versions_and_load_back(tmp_path):
    reg = PluginRegistry([tmp_path])
    p1 = reg.save(_plugin(seed=1))
    p2 = reg.save(_plugin(seed=2))
    assert (p1.version, p2.version) == (1, 2)
    assert reg.versions("blood") == [1, 2] and reg.names() == ["blood"]
    latest, first = reg.load("blood"), reg.load("blood", version=1)
    assert latest.version == 2 and first.version == 1
    torch.testing.assert_close(first.state["head.out.weight"], p1.state["head.out.weight"])
    assert latest.key != first.key  # different weights, different host adapters
    manifest = json.loads((tmp_path / "blood" / "v2" / "manifest.json").read_text())
    assert manifest["head"]["n_slots"] == 200
    assert manifest["head"]["slots"][0] == {"slot": 0, "label": "a", "ontology_id": "CL:0000236"}
    assert manifest["moe_lora"]["n_experts"] == 5 and manifest["moe_lora"]["rank"] == 8
    assert manifest["base_model"]["sha256"] == "0" * 64
    assert reg.tissues() == ["blood"] and reg.plugin_for("blood") == "blood"
    table = reg.table()
    assert table.loc[0, "version"] == 2 and table.loc[0, "versions"] == 2


def test_crash_while_saving_leaves_nothing_half_written(tmp_path, monkeypatch):
    reg = PluginRegistry([tmp_path])
    reg.save(_plugin(seed=1))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("scagent.plugins._plugin.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        reg.save(_plugin(seed=2))
    assert reg.versions("blood") == [1]
    assert sorted(p.name for p in (tmp_path / "blood").iterdir()) == ["v1"]  # no temp left
    assert reg.load("blood").version == 1


def test_damaged_or_foreign_folders_are_clear_errors(tmp_path):
    reg = PluginRegistry([tmp_path])
    reg.save(_plugin())
    weights = tmp_path / "blood" / "v1" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"corrupt!")
    with pytest.raises(PluginError, match="checksum"):
        reg.load("blood")
    (tmp_path / "blood" / "v1" / "manifest.json").write_text("{not json")
    with pytest.raises(PluginError, match="not valid JSON"):
        reg.load("blood")
    with pytest.raises(PluginError, match="No plugin named 'lung'"):
        reg.load("lung")
    with pytest.raises(PluginError, match="no version 7"):
        reg.path("blood", 7)
    with pytest.raises(PluginError, match="not a plugin folder"):
        Plugin.load(tmp_path)
    with pytest.raises(PluginError, match="must start with"):
        reg.save(_plugin(name="../evil"))


def test_plugin_validation():
    with pytest.raises(PluginError, match="kind"):
        Plugin(**{**_plugin().__dict__, "kind": "organ"})
    with pytest.raises(PluginError, match=r"1\.\.200 labels"):
        Plugin(**{**_plugin().__dict__, "labels": [], "ontology_ids": []})


def test_user_plugins_shadow_shipped_ones(tmp_path):
    user, shipped = tmp_path / "user", tmp_path / "shipped"
    PluginRegistry([shipped]).save(_plugin(labels=("x", "y")))
    reg = PluginRegistry([user, shipped])
    assert reg.load("blood").labels == ["x", "y"]
    p = reg.save(_plugin(labels=("u", "v")))
    assert p.version == 2 and (user / "blood" / "v2").is_dir()
    assert reg.load("blood").labels == ["u", "v"]
