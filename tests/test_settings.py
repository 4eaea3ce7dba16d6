"""``sa.settings``: data directory, validation, and no side effects at import."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import scagent as sa


@pytest.fixture
def no_override(monkeypatch):
    """Clear any assigned data_dir for the test; monkeypatch restores it."""
    monkeypatch.setattr(sa.settings, "_data_dir", None)
    monkeypatch.delenv("SCAGENT_HOME", raising=False)


def test_scagent_home_overrides_data_dir(no_override, monkeypatch, tmp_path):
    monkeypatch.setenv("SCAGENT_HOME", str(tmp_path / "home"))
    assert sa.settings.data_dir == tmp_path / "home"


def test_scagent_home_expands_user(no_override, monkeypatch):
    monkeypatch.setenv("SCAGENT_HOME", "~/scagent_test_home")
    assert sa.settings.data_dir == Path("~/scagent_test_home").expanduser()


def test_default_data_dir_is_user_data_dir(no_override):
    path = sa.settings.data_dir
    assert path.is_absolute()
    assert "scagent" in path.parts[-1]


def test_assigned_data_dir_wins_over_env(no_override, monkeypatch, tmp_path):
    monkeypatch.setenv("SCAGENT_HOME", str(tmp_path / "env"))
    sa.settings.data_dir = tmp_path / "assigned"
    assert sa.settings.data_dir == tmp_path / "assigned"
    sa.settings.data_dir = None
    assert sa.settings.data_dir == tmp_path / "env"


def test_ensure_data_dir_creates_it(no_override, monkeypatch, tmp_path):
    home = tmp_path / "a" / "b"
    monkeypatch.setenv("SCAGENT_HOME", str(home))
    assert not home.exists()
    assert sa.settings.ensure_data_dir() == home
    assert home.is_dir()
    assert sa.settings.ensure_data_dir() == home  # idempotent


def test_import_creates_nothing(tmp_path):
    home = tmp_path / "scagent_home"
    env = {**os.environ, "SCAGENT_HOME": str(home)}
    code = (
        "import scagent as sa, scagent.io, scagent.pp, scagent.datasets, scagent.knowledge; "
        "print(sa.settings.data_dir)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == str(home)
    assert not home.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "mps"])
def test_valid_devices(monkeypatch, device):
    monkeypatch.setattr(sa.settings, "device", device)
    assert sa.settings.device == device


def test_invalid_device():
    before = sa.settings.device
    with pytest.raises(
        ValueError,
        match=r"settings\.device must be one of \('auto', 'cpu', 'cuda', 'mps'\), got 'gpu'",
    ):
        sa.settings.device = "gpu"
    assert sa.settings.device == before


def test_resolved_device_explicit(monkeypatch):
    monkeypatch.setattr(sa.settings, "device", "cpu")
    assert sa.settings.resolved_device() == "cpu"


@pytest.mark.parametrize("name", ["batch_size", "min_recognised_genes"])
@pytest.mark.parametrize("value", [0, -5, 2.5, "100"])
def test_invalid_positive_integers(name, value):
    before = getattr(sa.settings, name)
    with pytest.raises(
        ValueError, match=rf"settings\.{name} must be a positive integer, got {value!r}"
    ):
        setattr(sa.settings, name, value)
    assert getattr(sa.settings, name) == before


def test_defaults():
    fresh = type(sa.settings)()
    assert fresh.device == "auto"
    assert fresh.min_recognised_genes == 200
    assert fresh.seed == 0
    assert "_data_dir" not in repr(fresh)


def test_set_verbosity(monkeypatch):
    logger = logging.getLogger("scagent")
    monkeypatch.setattr(logger, "level", logger.level)
    sa.settings.set_verbosity("INFO")
    assert logger.level == logging.INFO
    sa.settings.set_verbosity(logging.WARNING)
    assert logger.level == logging.WARNING
