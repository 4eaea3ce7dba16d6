"""``scagent config``: one persistent LLM choice; flag > environment > config file > default."""

import tomllib

import pytest
from typer.testing import CliRunner

from scagent.cli import app

runner = CliRunner()
ENV = (
    "SCAGENT_LLM",
    "SCAGENT_LLM_BASE_URL",
    "SCAGENT_LLM_MODEL",
    "SCAGENT_LLM_API_KEY",
    "OPENAI_API_KEY",
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A data directory of its own and no LLM settings in the environment."""
    monkeypatch.setenv("SCAGENT_HOME", str(tmp_path / "home"))
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def run(*args):
    return runner.invoke(app, ["config", *args])


def test_set_get_show_and_the_file(home):
    result = run("set", "llm", "Rules")
    assert result.exit_code == 0, result.output
    assert run("get", "llm").output.strip() == "rules"
    stored = tomllib.loads((home / "config.toml").read_text())
    assert stored == {"llm": "rules"}
    assert sorted(p.name for p in home.iterdir()) == ["config.toml"]  # no temp file left
    run("set", "llm_base_url", "http://localhost:8000/v1")
    show = run("show").output
    assert f"config file: {home / 'config.toml'}" in show
    assert f"llm              rules  [from the config file {home / 'config.toml'}]" in show
    assert "llm_model        (not set)  [default]" in show
    assert "llm_api_key_env  OPENAI_API_KEY  [default]" in show
    assert tomllib.loads((home / "config.toml").read_text()) == {
        "llm": "rules",
        "llm_base_url": "http://localhost:8000/v1",
    }
    assert run("unset", "llm").exit_code == 0
    assert run("get", "llm").output.strip() == "auto"
    assert run("get", "llm_model").exit_code == 1  # nothing sets it


def test_precedence_flag_environment_file_default(home, monkeypatch):
    from scagent._config_file import resolve
    from scagent.agent import backend_choice

    assert resolve("llm").source == "default"
    run("set", "llm", "rules")
    assert backend_choice()[0] == "rules"
    assert backend_choice()[1].source == "config file"
    monkeypatch.setenv("SCAGENT_LLM", "openai:qwen")
    name, choice = backend_choice()
    assert (name, choice.value, choice.origin) == ("openai", "openai:qwen", "$SCAGENT_LLM")
    assert "[from $SCAGENT_LLM]" in run("show").output
    name, choice = backend_choice("rules")
    assert (name, choice.source) == ("rules", "flag")
    assert "[from --llm]" in run("show", "--llm", "rules").output
    assert "overrides it" in run("set", "llm", "embedded").output


def test_unknown_keys_and_values_exit_2(home):
    result = run("set", "colour", "red")
    assert result.exit_code == 2
    assert "Unknown configuration key 'colour'" in result.output
    for key, value in [
        ("llm", "gpt-17"),
        ("llm", "rules:big"),
        ("llm", "openai:"),
        ("llm_base_url", "localhost"),
        ("llm_api_key_env", "sk-123 456"),
    ]:
        result = run("set", key, value)
        assert result.exit_code == 2, (key, value, result.output)
        assert result.output.startswith("error: ")
    assert not (home / "config.toml").exists()  # nothing written
    assert run("get", "nope").exit_code == 2


def test_openai_backend_reads_the_config_file(home, monkeypatch):
    from scagent.agent import get_llm

    run("set", "llm", "openai:deepseek-r1")
    run("set", "llm_base_url", "http://127.0.0.1:9/v1")
    run("set", "llm_api_key_env", "$MY_ENDPOINT_KEY")
    assert run("get", "llm_api_key_env").output.strip() == "MY_ENDPOINT_KEY"
    monkeypatch.setenv("MY_ENDPOINT_KEY", "secret-from-my-variable")
    llm = get_llm()
    assert llm.name == "openai (deepseek-r1 at http://127.0.0.1:9/v1)"
    assert llm.model.openai_api_key.get_secret_value() == "secret-from-my-variable"
    assert "secret" not in (home / "config.toml").read_text()  # only the variable's name
    monkeypatch.setenv("SCAGENT_LLM_MODEL", "ignored-when-openai-names-one")
    assert "deepseek-r1" in get_llm().name
    run("set", "llm", "openai")
    assert "ignored-when-openai-names-one" in get_llm().name  # environment over the file


def test_doctor_says_where_the_backend_came_from(home, monkeypatch):
    run("set", "llm", "rules")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert f"LLM backend: rules (from the config file {home / 'config.toml'})" in result.output
    result = runner.invoke(app, ["doctor", "--llm", "rules"])
    assert "LLM backend: rules (from --llm)" in result.output
    monkeypatch.setenv("SCAGENT_LLM", "rules")
    assert "LLM backend: rules (from $SCAGENT_LLM)" in runner.invoke(app, ["doctor"]).output


def test_a_broken_config_file_is_a_clear_error(home):
    home.mkdir()
    (home / "config.toml").write_text("llm = embedded\n")  # not TOML: unquoted
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 2
    assert "is not valid TOML" in result.output
    (home / "config.toml").write_text('llm = "gpt-17"\n')
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 2
    assert "llm from the config file" in result.output and "gpt-17" in result.output
