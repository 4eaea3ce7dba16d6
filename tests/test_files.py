"""``atomic_file``: a file is replaced whole or not at all."""

import os
import stat

import pytest

from scagent._files import atomic_file


def test_atomic_file_replaces_in_one_step(tmp_path):
    dest = tmp_path / "sub" / "value.txt"
    with atomic_file(dest) as tmp:
        assert tmp.parent == dest.parent
        tmp.write_text("one")
        assert not dest.exists()  # nothing visible before the block ends
    assert dest.read_text() == "one"
    with atomic_file(dest) as tmp:
        tmp.write_text("two")
        assert dest.read_text() == "one"
    assert dest.read_text() == "two"
    assert [p.name for p in dest.parent.iterdir()] == ["value.txt"]  # no temporary left


def test_atomic_file_failure_keeps_the_old_file(tmp_path):
    dest = tmp_path / "value.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["value.txt"]


def test_atomic_file_gets_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        dest = tmp_path / "shared.json"
        with atomic_file(dest, suffix=".json") as tmp:
            assert tmp.name.endswith(".json")
            tmp.write_text("{}")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
