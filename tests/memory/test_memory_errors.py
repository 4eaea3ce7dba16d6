"""Clear errors: a Lite store held by another process, a server that does not answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from typer.testing import CliRunner

from scagent.cli import app
from scagent.memory import MemoryStoreBusy, MemoryStoreUnreachable, VectorMemory

#: A second process holds the store until its stdin closes.
HOLDER = textwrap.dedent(
    """
    import sys
    from scagent.memory import VectorMemory
    with VectorMemory(sys.argv[1]):
        print("holding", flush=True)
        sys.stdin.read()
    print("released", flush=True)
    """
)


def test_second_process_gets_a_clear_busy_error(tmp_path, unit_vectors):
    store = tmp_path / "memory" / "milvus.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        t0 = time.monotonic()
        with pytest.raises(MemoryStoreBusy) as err:
            VectorMemory(store)
        assert time.monotonic() - t0 < 5  # at once: no wait on Milvus Lite's own lock
        msg = str(err.value)
        assert str(store) in msg
        assert "another scagent process" in msg and f"pid {holder.pid}" in msg
        assert "SCAGENT_MILVUS_URI" in msg
        # the command line says the same in one line
        result = CliRunner().invoke(app, ["memory", "info"], env={"SCAGENT_MILVUS_URI": str(store)})
        assert result.exit_code == 2
        assert (
            result.output.startswith("error: The memory store") and "Traceback" not in result.output
        )
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
        released = holder.stdout.read().strip()
        holder.stdout.close()
    assert released == "released"
    # once the holder is gone the store opens, with what the holder left
    with VectorMemory(store) as memory:
        memory.insert(
            "pretrained",
            unit_vectors(5),
            cell_ids="c",
            tissue="t",
            cell_type="x",
            ontology_id="",
            dataset="d",
        )
        # a second handle in the same process shares the open store
        with VectorMemory(store) as again:
            assert again.count("pretrained") == 5
        assert memory.count("pretrained") == 5


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_names_the_uri_and_the_setting(home, monkeypatch):
    uri = f"http://127.0.0.1:{_closed_port()}"
    t0 = time.monotonic()
    with pytest.raises(MemoryStoreUnreachable) as err:
        VectorMemory(uri, timeout=3)
    assert time.monotonic() - t0 < 30
    assert uri in str(err.value) and "SCAGENT_MILVUS_URI" in str(err.value)
    monkeypatch.setenv("SCAGENT_MILVUS_URI", uri)
    result = CliRunner().invoke(app, ["memory", "info"])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: Cannot reach the Milvus server at {uri}")
    assert os.environ["SCAGENT_MILVUS_URI"] == uri
