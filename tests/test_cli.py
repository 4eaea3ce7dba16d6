from pathlib import Path

import pytest
from typer.testing import CliRunner

from scagent.cli import app

runner = CliRunner()
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["demo"],
        ["info"],
        ["bench"],
        ["annotate"],
        ["plugins"],
        ["plugins", "train"],
        ["plugins", "list"],
    ],
)
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_demo_annotates_pbmc68k_with_the_shipped_plugins():
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "3,055 cells" in result.output
    for tissue in ("blood", "pancreas", "brain", "lung"):
        assert tissue in result.output
    assert "142 malignant" in result.output
    assert "annotating scanpy's pbmc68k_reduced" in result.output
    assert "published labels (rows) vs scagent (columns)" in result.output
    assert "CD14+ monocyte" in result.output and "B cell" in result.output


def test_annotate_and_plugin_commands(tmp_path, reference):
    src = tmp_path / "in.h5ad"
    reference.write_h5ad(src)
    plugins = tmp_path / "plugins"
    result = runner.invoke(
        app,
        [
            "plugins",
            "train",
            str(src),
            "-o",
            str(plugins),
            "--max-epochs",
            "1",
            "--tissue",
            "pancreas",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tissue v1: 2 classes" in result.output and "pancreas v1: 3 classes" in result.output
    result = runner.invoke(app, ["plugins", "list", "--plugins", str(plugins)])
    assert result.exit_code == 0, result.output
    assert "tissue_assignment" in result.output and "pancreas" in result.output
    out = tmp_path / "out.h5ad"
    result = runner.invoke(
        app,
        ["annotate", str(src), "-o", str(out), "--plugins", str(plugins), "--tissue", "pancreas"],
    )
    assert result.exit_code == 0, result.output
    assert "mean_confidence" in result.output and f"wrote {out} (42 cells)" in result.output
    assert out.exists()
    result = runner.invoke(
        app, ["annotate", str(src), "-o", str(out), "--plugins", str(plugins), "--tissue", "liver"]
    )
    assert result.exit_code == 2
    assert "Unknown tissue 'liver'" in result.output
    result = runner.invoke(app, ["annotate", str(tmp_path / "no.h5ad"), "-o", str(out)])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_info_reports_genes_and_content():
    path = SHARED / "unlabelled" / "lung_delorey2021_hlca_query.h5ad"
    if not path.exists():
        pytest.skip("shared data not available")
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert "1,786 cells" in result.output
    assert "human ensembl ids" in result.output
    assert "counts from X" in result.output


def test_info_missing_file_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["info", str(tmp_path / "nope.h5ad")])
    assert result.exit_code == 2
    assert "No such file" in result.output


def test_bench_unknown_suite_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["bench", "-s", "nope", "--out", str(tmp_path / "b.md")])
    assert result.exit_code == 2
    assert "Unknown benchmark suite" in result.output


@pytest.mark.slow
def test_full_bench_command(tmp_path):
    out = tmp_path / "benchmarks.md"
    result = runner.invoke(app, ["bench", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    for method in (
        "CellTypist",
        "CellTypist + majority voting",
        "logistic regression",
        "kNN on PCA",
        "MLP (2 hidden layers)",
        "frozen encoder + linear head",
        "scagent (MoE-LoRA plugins)",
        "scagent (MoE-LoRA plugins) + majority vote",
        "scagent (tissue assigned)",
        "scagent (pancreas plugin)",
    ):
        assert f"| {method} |" in text
    assert "leave-one-donor-out" in text
    for table in (
        "tissue assignment and calibration",
        "Batch mixing",
        "Plugin switching",
        "200,000-cell .h5ad",
    ):
        assert table in text
    for fig in ("scagent_confusion.png", "annotation_radar.png", "embeddings_umap.png"):
        assert (tmp_path / "figures" / fig).stat().st_size > 10_000


def test_pretrain_then_embed_from_the_command_line(tmp_path, atlas):
    data = atlas[::15].copy()
    data.write_h5ad(tmp_path / "corpus.h5ad")
    model = tmp_path / "enc"
    result = runner.invoke(
        app,
        [
            "pretrain",
            str(tmp_path / "corpus.h5ad"),
            "--out",
            str(model),
            "--epochs",
            "1",
            "--d-model",
            "16",
            "--nlayers",
            "1",
            "--nhead",
            "2",
            "--d-hid",
            "32",
            "--max-len",
            "32",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "validation loss" in result.output
    assert (model / "model.safetensors").exists()
    result = runner.invoke(
        app,
        [
            "embed",
            str(tmp_path / "corpus.h5ad"),
            "-o",
            str(tmp_path / "out.h5ad"),
            "--model",
            str(model),
        ],
    )
    assert result.exit_code == 0, result.output
    import anndata as ad

    out = ad.read_h5ad(tmp_path / "out.h5ad")
    assert out.obsm["X_scagent"].shape == (data.n_obs, 16)


def test_embed_bad_model_folder_is_a_clear_error(tmp_path, atlas):
    atlas[:20].copy().write_h5ad(tmp_path / "x.h5ad")
    result = runner.invoke(
        app,
        [
            "embed",
            str(tmp_path / "x.h5ad"),
            "-o",
            str(tmp_path / "o.h5ad"),
            "--model",
            str(tmp_path / "nope"),
        ],
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output
