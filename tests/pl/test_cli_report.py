"""``scagent annotate --report`` and ``scagent demo --report``, on the shipped defaults."""

import anndata as ad
import pandas as pd
import pytest
from typer.testing import CliRunner

from scagent.cli import app
from scagent.plugins import shipped_plugins_path

runner = CliRunner()


def test_annotate_writes_a_report(pbmc_small, tmp_path):
    src, out, report = tmp_path / "pbmc.h5ad", tmp_path / "out.h5ad", tmp_path / "report"
    pbmc_small.write_h5ad(src)
    base = ["annotate", str(src), "-o", str(out), "--plugins", str(shipped_plugins_path())]
    # TODO: drop --species (whole-file path) once the streamed writer stores its chunk records
    base += ["--species", "human"]
    result = runner.invoke(app, [*base, "--report", str(report), "--labels-key", "cell_type"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (50 cells)" in result.output
    expected = "calls.png, confidence.png, markers.png, confusion.png, summary.md"
    assert f"wrote report {report} ({expected})" in result.output
    got = ad.read_h5ad(out)
    text = (report / "summary.md").read_text()
    decision = got.uns["scagent"]["annotate"]["tissue"]["decision"]
    assert "50 cells annotated" in text and f"**{decision}**" in text
    for call in got.obs["scagent_cell_type"].astype(str).unique():
        assert f"| {call} |" in text
    crosstab = pd.crosstab(got.obs["cell_type"], got.obs["scagent_cell_type"])
    for label, row in crosstab.iterrows():
        assert f"| {label} |" in text and f"| {row.sum()} |" in text
    for name in ("calls.png", "confidence.png", "confusion.png", "markers.png"):
        assert (report / name).stat().st_size > 10_000


def test_annotate_report_options_are_checked_first(pbmc_small, tmp_path):
    src, out = tmp_path / "pbmc.h5ad", tmp_path / "out.h5ad"
    pbmc_small.write_h5ad(src)
    result = runner.invoke(
        app,
        [
            "annotate",
            str(src),
            "-o",
            str(out),
            "--report",
            str(tmp_path / "r"),
            "--labels-key",
            "x",
        ],
    )
    assert result.exit_code == 2
    assert "--labels-key 'x' is not an .obs column of pbmc.h5ad" in result.output
    assert "'cell_type'" in result.output
    assert not out.exists() and not (tmp_path / "r").exists()
    result = runner.invoke(app, ["annotate", str(src), "-o", str(out), "--labels-key", "cell_type"])
    assert result.exit_code == 2 and "add --report DIR" in result.output
    result = runner.invoke(app, ["annotate", str(src), "-o", str(out), "--report", str(src)])
    assert result.exit_code == 2 and "is a file; give a folder" in result.output
    assert not out.exists()


def test_report_options_in_help():
    text = runner.invoke(app, ["annotate", "--help"], terminal_width=100).output
    assert "--report" in text and "--labels-key" in text
    text = runner.invoke(app, ["demo", "--help"], terminal_width=100).output
    assert "--report" in text and "DIR" in text


@pytest.mark.slow
def test_demo_prints_the_confusion_and_writes_a_report(tmp_path):
    report = tmp_path / "demo-report"
    result = runner.invoke(app, ["demo", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "published labels (rows) vs scagent (columns), cells:" in result.output
    assert "CD19+ B" in result.output and "columns:\n  [1] " in result.output
    files = "calls.png, confidence.png, markers.png, confusion.png, summary.md"
    assert f"report: {report.resolve()} ({files})" in result.output
    text = (report / "summary.md").read_text()
    assert "700 cells annotated" in text and "Against known labels (`bulk_labels`)" in text
    assert (report / "confusion.png").stat().st_size > 10_000
