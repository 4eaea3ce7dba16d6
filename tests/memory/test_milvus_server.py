"""The same memory against a real Milvus server (started by the test run; CI runs these)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from scagent.cli import app
from scagent.memory import VectorMemory

pytestmark = pytest.mark.milvus_server
runner = CliRunner()


def test_vector_memory_on_a_server(milvus_server, unit_vectors):
    with VectorMemory(milvus_server) as memory:
        memory.drop()
        assert not memory.is_lite and memory.describe()["kind"] == "Milvus server"
        n = 6000  # one class larger than a page of the server's query iterator
        V = unit_vectors(n, 16, seed=1)
        common = {"cell_type": "T cell", "ontology_id": "CL:0000084", "encoder": "enc"}
        memory.insert(
            "pretrained",
            V,
            cell_ids=[f"a{i}" for i in range(n)],
            tissue="blood",
            dataset="d1",
            **common,
        )
        memory.insert(
            "pretrained",
            V[:500],
            cell_ids=[f"b{i}" for i in range(500)],
            tissue="lung",
            dataset="d2",
            **common,
        )
        # joins the existing blood class: its statistics are read back from all rows
        memory.insert(
            "pretrained",
            V[:1000],
            cell_ids=[f"c{i}" for i in range(1000)],
            tissue="blood",
            dataset="d2",
            **common,
        )
        assert memory.count("pretrained") == 7500
        stats = memory.class_stats("pretrained", tissue="blood")
        assert stats.table["n"].tolist() == [7000]
        assert stats.table["datasets"].iloc[0] == {"d1": 6000, "d2": 1000}
        all_blood = np.vstack([V, V[:1000]])
        assert np.allclose(stats.centroids[0], all_blood.mean(axis=0), atol=1e-5)
        nb = memory.search("pretrained", V[:20], k=5, tissue="lung", nprobe=128)
        assert set(nb["tissue"].ravel()) == {"lung"}
        assert (nb["cell_id"][:, 0] == [f"b{i}" for i in range(20)]).all()
        assert memory.delete(dataset="d2") == 1500
        assert memory.stats_in_step("pretrained")
        assert memory.class_stats("pretrained").table["n"].tolist() == [6000]
        memory.drop()


def test_commands_on_a_server(milvus_server, plugins_home, lab_file, monkeypatch):
    monkeypatch.setenv("SCAGENT_MILVUS_URI", milvus_server)
    with VectorMemory() as memory:
        memory.drop()
    added = runner.invoke(
        app, ["memory", "add", lab_file, "--cell-type-key", "label", "--tissue-key", "organ"]
    )
    assert added.exit_code == 0, added.output
    built = runner.invoke(app, ["memory", "build", "--reference", "lab_atlas"])
    assert built.exit_code == 0, built.output
    info = runner.invoke(app, ["memory", "info"])
    assert info.exit_code == 0, info.output
    assert f"memory: {milvus_server} (Milvus server)" in info.output
    rows = {line.split()[0]: line.split() for line in info.output.splitlines() if line}
    assert rows["pretrained"][1] == "80" and rows["tuned"][1] == "80"
    assert rows["tuned"][-2:] == ["in", "step"]
    found = runner.invoke(app, ["memory", "search", lab_file, "--k", "3", "--show", "5"])
    assert found.exit_code == 0, found.output
    assert "80 cells; 3 nearest stored cells" in found.output
