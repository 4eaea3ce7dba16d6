"""The dataset store: bring your own reference, label report, atomic updates under kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from typer.testing import CliRunner

import scagent as sa
from scagent.cli import app
from scagent.memory import DatasetStore, harmonise_reference, reference_data
from scagent.memory._datasets import CRASHPOINT_ENV

runner = CliRunner()


def test_bring_your_own_reference(home, lab_file):
    result = runner.invoke(
        app, ["memory", "add", lab_file, "--cell-type-key", "label", "--tissue-key", "organ"]
    )
    assert result.exit_code == 0, result.output
    assert "added 'lab_atlas' (version 1): 80 cells, 3,000 genes" in result.output
    assert "'my weird cells' (4)" in result.output  # unmatched labels are reported
    ref = reference_data("lab_atlas")
    obs = ref.adata.obs
    for col in ("cell_type", "cell_type_ontology_term_id", "tissue", "dataset", "donor"):
        assert col in obs
    assert set(obs["tissue"]) == {"blood", "pancreas"}
    assert set(obs["dataset"]) == {"lab_atlas"} and set(obs["donor"]) == {"unknown"}
    weird = obs["cell_type"] == "my weird cells"
    # a label no ontology knows stays a class of its own (the experts' ``name:`` terms)
    assert weird.sum() == 4
    assert (obs.loc[weird, "cell_type_ontology_term_id"] == "name:my weird cells").all()
    assert (DatasetStore().load("lab_atlas").obs["cell_type_ontology_term_id"][weird] == "").all()
    assert (obs.loc[~weird, "cell_type_ontology_term_id"].str.startswith("CL:")).all()
    assert ref.adata.var["measured_in_lab_atlas"].all()
    original = sa.read(lab_file)
    assert np.array_equal(ref.adata.X.toarray(), original.X.toarray())  # raw counts kept
    assert ref.version.startswith("lab_atlas-") and ref.name == "lab_atlas"
    assert reference_data().name == "atlas"

    listed = runner.invoke(app, ["memory", "list"])
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert any(line.split()[:2] == ["atlas", "10680"] for line in lines)
    assert any(line.split()[:2] == ["lab_atlas", "80"] for line in lines)

    again = runner.invoke(
        app, ["memory", "add", lab_file, "--cell-type-key", "label", "--tissue-key", "organ"]
    )
    assert again.exit_code == 2 and "already has a dataset 'lab_atlas'" in again.output
    replaced = runner.invoke(
        app,
        ["memory", "add", lab_file, "--cell-type-key", "label", "--tissue", "blood", "--replace"],
    )
    assert replaced.exit_code == 0 and "(version 2)" in replaced.output
    assert set(reference_data("lab_atlas").adata.obs["tissue"]) == {"blood"}

    assert runner.invoke(app, ["memory", "remove", "atlas"]).exit_code == 2
    removed = runner.invoke(app, ["memory", "remove", "lab_atlas"])
    assert removed.exit_code == 0, removed.output
    assert "removed 'lab_atlas' (80 cells)" in removed.output
    with pytest.raises(KeyError, match="lab_atlas"):
        reference_data("lab_atlas")
    missing = runner.invoke(app, ["memory", "remove", "lab_atlas"])
    assert missing.exit_code == 2 and "No dataset 'lab_atlas'" in missing.output


def test_harmonise_needs_real_columns(lab_file):
    adata = sa.read(lab_file)
    with pytest.raises(sa.InputDataError, match=r"No \.obs column 'cells'"):
        harmonise_reference(adata, name="x", cell_type_key="cells", tissue="blood")
    with pytest.raises(sa.InputDataError, match="not allowed"):
        harmonise_reference(adata, name="../x", cell_type_key="label", tissue="blood")


WRITER = textwrap.dedent(
    """
    import sys
    import scagent as sa
    from scagent.memory import DatasetStore, harmonise_reference
    store = DatasetStore()
    if sys.argv[1] == "add":
        adata, report = harmonise_reference(
            sa.read(sys.argv[2]), name="lab", cell_type_key="label", tissue="lung"
        )
        store.add(adata, name="lab", source=sys.argv[2], report=report, replace=True)
    else:
        store.remove("lab")
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize(
    ("operation", "point", "survives"),
    [
        ("add", "file-written", "old"),
        ("add", "manifest-written", "old"),
        ("add", "switched", "new"),
        ("remove", "manifest-written", "old"),
        ("remove", "switched", "gone"),
    ],
)
def test_kill_mid_update_leaves_a_consistent_store(home, lab_file, operation, point, survives):
    store = DatasetStore()
    adata, report = harmonise_reference(
        sa.read(lab_file), name="lab", cell_type_key="label", tissue_key="organ"
    )
    store.add(adata, name="lab", source=lab_file, report=report)
    before = json.loads(store.manifest_path.read_text())

    env = {**os.environ, CRASHPOINT_ENV: point}
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, operation, lab_file],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as writer:
        seen = []
        for line in writer.stderr:
            seen.append(line)
            if line.startswith(f"scagent: paused at {point}"):
                break
        else:
            pytest.fail("the writer never reached " + point + ":\n" + "".join(seen))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)

    fresh = DatasetStore()  # as a new process would open it
    assert fresh.verify() == []
    if survives == "gone":
        assert fresh.names() == ["atlas"]
    else:
        ref = reference_data("lab")
        tissues = set(ref.adata.obs["tissue"])
        if survives == "old":
            assert fresh.manifest() == before
            assert tissues == {"blood", "pancreas"} and fresh.entry("lab")["version"] == 1
        else:
            assert tissues == {"lung"} and fresh.entry("lab")["version"] == 2
        assert ref.adata.n_obs == 80

    # the next update succeeds and clears what the killed writer left behind
    store.add(adata, name="other", source=lab_file, report=report)
    keep = {
        e["file"]
        for m in ("manifest.json", "manifest.prev.json")
        for e in json.loads((store.root / m).read_text())["datasets"].values()
    }
    assert {f"files/{p.name}" for p in (store.root / "files").iterdir()} == keep
    assert not [p for p in store.root.iterdir() if p.name.endswith(".tmp")]


LOOP_WRITER = textwrap.dedent(
    """
    import sys
    import scagent as sa
    from scagent.memory import DatasetStore, harmonise_reference
    store = DatasetStore()
    adata, report = harmonise_reference(
        sa.read(sys.argv[1]), name="lab", cell_type_key="label", tissue_key="organ"
    )
    i = 0
    while True:  # replace, remove, add, ... until killed
        if i % 3 == 1:
            store.remove("lab")
        else:
            store.add(adata, name="lab", source=f"round {i}", report=report, replace=True)
        i += 1
        print(f"update {i}", file=sys.stderr, flush=True)
    """
)


def test_kill_at_random_moments_leaves_a_consistent_store(home, lab_file):
    """Updates killed wherever they happen to be (not at a chosen point)."""
    rng = np.random.default_rng(0)
    store = DatasetStore()
    for _ in range(4):
        with subprocess.Popen(
            [sys.executable, "-c", LOOP_WRITER, lab_file],
            stderr=subprocess.PIPE,
            text=True,
        ) as writer:
            line = writer.stderr.readline()  # one update done: updates are under way
            assert line.startswith("update"), line + writer.stderr.read()
            t0 = time.monotonic()
            assert writer.stderr.readline().startswith("update")
            update = time.monotonic() - t0
            time.sleep(rng.uniform(0, 2 * update))
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=60)
        fresh = DatasetStore()
        assert fresh.verify() == []
        manifest = fresh.manifest()
        assert manifest["generation"] >= 2
        if "lab" in manifest["datasets"]:
            assert reference_data("lab").adata.n_obs == 80
        else:
            assert fresh.names() == ["atlas"]
        prev = json.loads((store.root / "manifest.prev.json").read_text())
        for entry in prev["datasets"].values():  # the previous version is whole too
            assert (store.root / entry["file"]).is_file()
