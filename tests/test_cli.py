import subprocess
import sys
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


def test_demo_annotates_pbmc68k_with_the_shipped_plugins(atlas):
    import scagent as sa

    # the conversation that follows is run to the end by tests/agent/test_real_tools.py (slow)
    result = runner.invoke(app, ["demo", "--no-conversation"])
    assert result.exit_code == 0, result.output
    assert f"scagent reference atlas: {atlas.n_obs:,} cells" in result.output
    for tissue in ("blood", "pancreas", "brain", "lung"):
        assert tissue in result.output
    novel = sa.datasets.novel_type_example()
    assert f"{novel.n_obs} malignant" in result.output
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


# --- help text, start-up, and clear errors for every input -------------------------------------

COMMANDS = [
    [],
    ["demo"],
    ["info"],
    ["pretrain"],
    ["embed"],
    ["bench"],
    ["annotate"],
    ["plugins"],
    ["plugins", "train"],
    ["plugins", "list"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "scagent" for c in COMMANDS])
def test_help_reads_cleanly(command):
    """No typer placeholders such as <bool>, <str> or {path}: plain FILE, TEXT, INTEGER."""
    result = runner.invoke(app, [*command, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    text = result.output
    for placeholder in ("<bool>", "<str>", "<int>", "<float>", "<path>", "<list", "{", "}"):
        assert placeholder not in text, f"{placeholder!r} in the help of {command}"
    assert f"Usage: scagent {' '.join(command)}".rstrip() in text


def test_help_shows_arguments_and_option_values():
    text = runner.invoke(app, ["annotate", "--help"], terminal_width=100).output
    assert "Usage: scagent annotate [OPTIONS] FILE" in text
    for option, metavar in [
        ("--out", "FILE"),
        ("--gene-column", "COLUMN"),
        ("--species", "SPECIES"),
        ("--plugins", "FOLDER"),
        ("--chunk-size", "INTEGER"),
    ]:
        line = next(ln for ln in text.splitlines() if option in ln)
        assert metavar in line, line
    flag = next(ln for ln in text.splitlines() if "--majority-voting" in ln)
    assert "--no-majority-voting" not in flag and "Vote within" in flag
    text = runner.invoke(app, ["plugins", "train", "--help"], terminal_width=100).output
    assert "Usage: scagent plugins train [OPTIONS] [FILE]" in text
    text = runner.invoke(app, ["embed", "--help"], terminal_width=100).output
    assert "--gene-column" in text and "--species" in text


_HEAVY = ("torch", "scanpy", "anndata", "sklearn", "matplotlib")


def _modules_after(code: str) -> list[str]:
    """Heavy modules imported by ``code`` run in a fresh interpreter."""
    probe = (
        f"import sys\n{code}\n"
        f"print('loaded:', *(m for m in {_HEAVY!r} if m in sys.modules), file=sys.stderr)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("loaded:"), out.stderr
    return line.split()[1:]


def test_help_imports_nothing_heavy():
    code = "from scagent.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass"
    assert _modules_after(code) == []


def test_info_imports_no_torch(pbmc_small, tmp_path):
    path = tmp_path / "pbmc.h5ad"
    pbmc_small.write_h5ad(path)
    code = (
        f"from scagent.cli import app\ntry:\n    app(['info', {str(path)!r}])\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code"
    )
    loaded = _modules_after(code)
    assert "anndata" in loaded  # it did read the file
    assert "torch" not in loaded and "scanpy" not in loaded and "sklearn" not in loaded


@pytest.mark.parametrize("command", ["annotate", "embed", "info"])
def test_text_file_named_h5ad_is_one_clear_line(tmp_path, command):
    path = tmp_path / "table.h5ad"
    path.write_text("gene,cell1,cell2\nCD3E,1,0\nMS4A1,0,4\n")
    args = [command, str(path)] + ([] if command == "info" else ["-o", str(tmp_path / "o.h5ad")])
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "error: Could not read" in result.output and "it is not an HDF5 file" in result.output
    assert "give it the extension of its format (.csv" in result.output
    assert not (tmp_path / "o.h5ad").exists()


def _barnyard(pbmc_small, mouse_atlas):
    """50 real human PBMCs and 30 real mouse pancreas cells on the union of their genes."""
    import anndata as ad
    import scipy.sparse as sp

    human = ad.AnnData(pbmc_small.X, obs=pbmc_small.obs[[]], var=pbmc_small.var[[]])
    mouse = mouse_atlas[:30, :400]
    mouse = ad.AnnData(sp.csr_matrix(mouse.X), obs=mouse.obs[[]], var=mouse.var[[]])
    out = ad.concat([human, mouse], join="outer")
    out.X = sp.csr_matrix(out.X, dtype="float32")
    return out


def _shipped_blood() -> list[str]:
    from scagent.plugins import shipped_plugins_path

    return ["--plugins", str(shipped_plugins_path()), "--tissue", "blood"]


def test_annotate_mixed_species_refused_then_one_species(pbmc_small, mouse_atlas, tmp_path):
    path = tmp_path / "barnyard.h5ad"
    _barnyard(pbmc_small, mouse_atlas).write_h5ad(path)
    out = tmp_path / "out.h5ad"
    result = runner.invoke(app, ["annotate", str(path), "-o", str(out), *_shipped_blood()])
    assert result.exit_code == 2, result.output
    assert "mixes human and mouse genes" in result.output and "--species human" in result.output
    assert not out.exists()
    result = runner.invoke(
        app,
        ["annotate", str(path), "-o", str(out), *_shipped_blood(), "--species", "human"],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (50 cells)" in result.output
    result = runner.invoke(app, ["info", str(path), "--species", "mouse"])
    assert result.exit_code == 0, result.output
    assert "30 cells" in result.output and "species: kept mouse" in result.output


def test_annotate_and_embed_take_gene_column(pbmc_small, tmp_path):
    pbmc_small.var["symbol"] = pbmc_small.var_names.to_numpy()
    pbmc_small.var_names = [f"feature{i}" for i in range(pbmc_small.n_vars)]
    path = tmp_path / "features.h5ad"
    pbmc_small.write_h5ad(path)
    for command in (["annotate", *_shipped_blood()], ["embed"]):
        out = tmp_path / f"{command[0]}.h5ad"
        base = [command[0], str(path), "-o", str(out), *command[1:]]
        result = runner.invoke(app, [*base, "--gene-column", "nope"])
        assert result.exit_code == 2, result.output
        assert "gene_column='nope' is not a column of .var" in result.output
        assert "['ensembl_id', 'symbol']" in result.output
        result = runner.invoke(app, [*base, "--gene-column", "symbol"])
        assert result.exit_code == 0, result.output
        assert out.exists()


def test_annotate_says_when_novelty_lacked_the_memory(pbmc_small, tmp_path, monkeypatch):
    import scagent as sa

    monkeypatch.setattr(sa.settings, "data_dir", tmp_path / "home")  # its memory is empty
    path = tmp_path / "pbmc.h5ad"
    pbmc_small.write_h5ad(path)
    out = tmp_path / "out.h5ad"
    args = ["annotate", str(path), "-o", str(out), *_shipped_blood(), "--no-build-memory"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "novelty: No nearest-neighbour evidence" in result.output
    assert "--build-memory" in result.output  # how to add it
    text = runner.invoke(app, ["annotate", "--help"], terminal_width=100).output
    assert "--build-memory" in text and "--no-build-memory" in text
