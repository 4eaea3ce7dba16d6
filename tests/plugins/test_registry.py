import json
import subprocess
import sys
import threading
import time
from contextlib import nullcontext

import pytest
import torch

from scagent import _files
from scagent._files import atomic_folder
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
    assert sorted(p.name for p in (tmp_path / "blood").iterdir()) == [".lock", "v1"]  # no temp
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


# --- concurrent saves and atomic replacement ---------------------------------------------------

_SAVER = """
import sys, time
from pathlib import Path

import torch

from scagent.nn import MoELoRAConfig
from scagent.plugins import Plugin, PluginRegistry

root, go, n, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
reg = PluginRegistry([root])
while not go.exists():
    time.sleep(0.005)
for i in range(n):
    g = torch.Generator().manual_seed(seed * 1000 + i)
    plugin = Plugin(
        name="blood", kind="cell_type", tissue="blood", labels=["a", "b"],
        ontology_ids=["CL:0000236", ""], lora=MoELoRAConfig(), head_hidden=2,
        base_model="default", base_sha256="0" * 64,
        state={"head.out.weight": torch.randn(200, 4, generator=g)},
        training={"writer": seed, "i": i},
    )
    print(reg.save(plugin).version, flush=True)
"""


def test_two_processes_saving_at_once_get_distinct_versions(tmp_path):
    """Two real processes save 8 versions each of one plugin at the same moment."""
    root, go, n = tmp_path / "plugins", tmp_path / "go", 8
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(root), str(go), str(n), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    time.sleep(0.5)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err  # no raw OSError for the loser of a race
    versions = [int(v) for out, _ in outs for v in out.split()]
    assert sorted(versions) == list(range(1, 2 * n + 1))
    reg = PluginRegistry([root])
    assert reg.versions("blood") == list(range(1, 2 * n + 1))
    writers = {}
    for v in range(1, 2 * n + 1):
        plugin = reg.load("blood", version=v)  # checksums match: nothing half-written
        assert plugin.version == v
        writers[(plugin.training["writer"], plugin.training["i"])] = v
    assert len(writers) == 2 * n  # every save of both writers is there, none overwritten
    left = sorted(p.name for p in (root / "blood").iterdir())
    assert left == [".lock", *sorted(f"v{v}" for v in range(1, 2 * n + 1))]


def test_saves_that_do_not_share_the_lock_move_to_the_next_version(tmp_path, monkeypatch):
    """Where the lock does not reach (another machine), a lost race takes the next version."""
    monkeypatch.setattr("scagent.plugins._registry.file_lock", lambda path: nullcontext())
    reg = PluginRegistry([tmp_path])
    errors, versions = [], []

    def save(seed):
        try:
            for i in range(6):
                versions.append(reg.save(_plugin(seed=seed * 10 + i)).version)
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=save, args=(s,)) for s in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(versions) == list(range(1, 19))
    assert reg.versions("blood") == list(range(1, 19))


_READER = """
import sys
from pathlib import Path

dest, stop = Path(sys.argv[1]), Path(sys.argv[2])
checks = missing = 0
while not stop.exists():
    checks += 1
    if not (dest / "manifest.json").is_file():
        missing += 1
print(checks, missing)
"""


def _replace_while_reading(tmp_path, rounds: int = 150) -> tuple[int, int]:
    dest, stop = tmp_path / "model", tmp_path / "stop"
    with atomic_folder(dest) as tmp:
        (tmp / "manifest.json").write_text("0")
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(dest), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(0.3)
        for i in range(1, rounds + 1):
            with atomic_folder(dest, replace=True) as tmp:
                (tmp / "manifest.json").write_text(str(i))
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=60)
    assert (dest / "manifest.json").read_text() == str(rounds)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "stop"]  # nothing left over
    checks, missing = (int(x) for x in out.split())
    return checks, missing


@pytest.mark.skipif(_files._renameat2 is None, reason="no renameat2 on this system")
def test_replace_never_leaves_a_moment_without_the_folder(tmp_path):
    """A reader in another process never finds the folder missing while it is replaced."""
    checks, missing = _replace_while_reading(tmp_path)
    assert checks > 150
    assert missing == 0


def test_replace_without_renameat2_still_ends_with_the_new_folder(tmp_path, monkeypatch):
    """The fallback (two renames) keeps the content right and leaves nothing behind."""
    monkeypatch.setattr(_files, "_renameat2", None)
    _replace_while_reading(tmp_path, rounds=20)


def test_write_once_folder_refuses_an_existing_one(tmp_path):
    dest = tmp_path / "v1"
    with atomic_folder(dest, replace=False) as tmp:
        (tmp / "a").write_text("first")
    dest_empty = tmp_path / "v2"
    dest_empty.mkdir()  # even an empty folder is not overwritten
    for target in (dest, dest_empty):
        with pytest.raises(FileExistsError):
            with atomic_folder(target, replace=False) as tmp:
                (tmp / "a").write_text("second")
    assert (dest / "a").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1", "v2"]
