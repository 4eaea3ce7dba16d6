import json

from typer.testing import CliRunner

from scagent.cli import app


def test_ask_plan_only(workdir, monkeypatch):
    monkeypatch.setattr("scagent.agent._tissues.known_tissues", lambda: ("blood", "brain"))
    result = CliRunner().invoke(
        app,
        [
            "ask",
            "--plan-only",
            "--llm",
            "rules",
            "Here is blood data at data/pbmc.h5ad, what cell types are in it?",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["requirement"] == "get_cell_w_tissue" and plan["tissue"] == "blood"
    assert plan["file_path"] == "data/pbmc.h5ad" and plan["cell_type"] is None
    assert plan["tools"] == ["memory_search", "annotate", "detect_novel"]
    assert plan["problems"] == []


def test_ask_plan_only_lists_problems(workdir, monkeypatch):
    monkeypatch.setattr("scagent.agent._tissues.known_tissues", lambda: ("blood", "brain"))
    result = CliRunner().invoke(
        app, ["ask", "--plan-only", "--llm", "rules", "Annotate /etc/x.h5ad from the liver"]
    )
    plan = json.loads(result.output)
    assert plan["tools"] == []
    assert any("outside the allowed directories" in p for p in plan["problems"])
    assert any("unknown tissue 'liver'" in p for p in plan["problems"])


def test_doctor_rules(workdir):
    result = CliRunner().invoke(app, ["doctor", "--llm", "rules"])
    assert result.exit_code == 0
    assert "LLM backend: rules" in result.output


def test_doctor_unknown_backend(workdir):
    result = CliRunner().invoke(app, ["doctor", "--llm", "nope"])
    assert result.exit_code == 2
