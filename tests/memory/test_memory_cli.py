"""``scagent memory build / info / search`` on real cells, real embeddings, Milvus Lite."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from scagent.cli import app
from scagent.memory import VectorMemory

runner = CliRunner()


def test_build_info_search(plugins_home, lab_file, tmp_path):
    added = runner.invoke(
        app, ["memory", "add", lab_file, "--cell-type-key", "label", "--tissue-key", "organ"]
    )
    assert added.exit_code == 0, added.output
    built = runner.invoke(app, ["memory", "build", "--reference", "lab_atlas"])
    assert built.exit_code == 0, built.output
    assert "lab_atlas: 80 cells in the pretrained space" in built.output
    assert "80 in the tuned space" in built.output  # blood and pancreas have plugins

    info = runner.invoke(app, ["memory", "info"])
    assert info.exit_code == 0, info.output
    assert f"memory: {plugins_home / 'memory' / 'milvus.db'} (Milvus Lite (embedded)" in info.output
    assert "index: IVF_FLAT, metric COSINE" in info.output and "nprobe 16" in info.output
    rows = {line.split()[0]: line.split() for line in info.output.splitlines() if line}
    assert rows["pretrained"][1:3] == ["80", "128"] and rows["pretrained"][-2:] == ["in", "step"]
    assert rows["tuned"][1] == "80"
    assert (
        "pancreatic beta cell" in info.output
        and "lab_atlas: 80 pretrained, 80 tuned" in info.output
    )

    with VectorMemory() as memory:
        tuned = memory.class_stats("tuned").table
        assert set(tuned["plugin_version"]) == {"blood@v1", "pancreas@v1"}
        assert len(memory.class_stats("pretrained").table) == len(tuned)

    # each stored cell finds itself first, in both spaces
    out = tmp_path / "neighbours.tsv"
    found = runner.invoke(app, ["memory", "search", lab_file, "--k", "3", "-o", str(out)])
    assert found.exit_code == 0, found.output
    assert "80 cells; 3 nearest stored cells per cell and space" in found.output
    table = pd.read_csv(out, sep="\t")
    assert set(table["space"]) == {"pretrained", "tuned"}
    first = table[table["rank"] == 1]
    assert len(first) == 160
    assert (first["cell_id"] == "lab_atlas:" + first["query"]).all()
    assert (first["distance"] < 1e-4).all()
    # the second search reads the cached embeddings
    again = runner.invoke(app, ["memory", "search", lab_file, "--k", "3", "--show", "2"])
    assert again.exit_code == 0 and "embeddings from the cache" in again.output

    # a labelled file straight into the vector memory, then statistics rebuilt, then reset
    direct = runner.invoke(
        app,
        [
            "memory",
            "build",
            "--from",
            lab_file,
            "--cell-type-key",
            "label",
            "--tissue",
            "blood",
            "--name",
            "direct",
        ],
    )
    assert direct.exit_code == 0, direct.output
    assert "'my weird cells' (4)" in direct.output
    with VectorMemory() as memory:
        assert memory.count("pretrained", dataset="direct") == 80
    stats = runner.invoke(app, ["memory", "build", "--stats-only"])
    assert stats.exit_code == 0 and "recomputed the statistics of" in stats.output
    removed = runner.invoke(app, ["memory", "remove", "lab_atlas"])
    assert "160 rows from the vector memory" in removed.output
    with VectorMemory() as memory:
        assert memory.count("pretrained") == 80 and memory.stats_in_step("tuned")
