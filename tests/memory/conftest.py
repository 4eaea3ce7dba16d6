"""Fixtures of the memory tests: a private data directory and a real Milvus server."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from anndata import AnnData

import scagent as sa

#: How long a Milvus server may take to answer after its start (about 20-35 s when idle,
#: a few minutes on a loaded machine).
SERVER_START_TIMEOUT = 240
#: The ports milvus-server binds; each gets a free one so runs never collide.
_SERVER_PORTS = (
    "etcd-port",
    "root-coord-port",
    "proxy-port",
    "proxy-internal-port",
    "query-coord-port",
    "query-node-port",
    "index-coord-port",
    "index-node-port",
    "data-coord-port",
    "data-node-port",
)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh scagent data directory (``SCAGENT_HOME``, inherited by subprocesses) and the
    default (embedded) memory URI."""
    path = tmp_path / "home"
    monkeypatch.setattr(sa.settings, "_data_dir", None)
    monkeypatch.setenv("SCAGENT_HOME", str(path))
    monkeypatch.delenv("SCAGENT_MILVUS_URI", raising=False)
    monkeypatch.delenv("SCAGENT_MILVUS_TOKEN", raising=False)
    return path


@pytest.fixture
def plugins_home(home, tiny_registry) -> Path:
    """``home`` with blood and pancreas plugins trained on the current default encoder (the
    user's plugins win over the shipped ones)."""
    shutil.copytree(tiny_registry.roots[0], home / "plugins")
    return home


def random_unit_vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Random unit vectors (for tests about storage, not biology)."""
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="session")
def unit_vectors():
    """``unit_vectors(n, dim=16, seed=0)``: random unit vectors."""
    return random_unit_vectors


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _etcd_config(path: Path, client_port: int) -> Path:
    """An embedded-etcd configuration on free ports. milvus-server's own options leave the
    etcd peer port at 2380 (and the client listener at 2379), so two servers on one
    machine would collide; Milvus reads this file from ``$ETCD_CONFIG_PATH``."""
    peer = _free_port()
    path.write_text(
        "name: scagent-test\n"
        f"listen-client-urls: http://127.0.0.1:{client_port}\n"
        f"advertise-client-urls: http://127.0.0.1:{client_port}\n"
        f"listen-peer-urls: http://127.0.0.1:{peer}\n"
        f"initial-advertise-peer-urls: http://127.0.0.1:{peer}\n"
        f"initial-cluster: scagent-test=http://127.0.0.1:{peer}\n"
    )
    return path


def _server_died(proc: subprocess.Popen) -> bool:
    """Whether the ``milvus`` binary the wrapper started has exited (the wrapper itself
    keeps running: it waits forever). Linux only; elsewhere the start timeout decides."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    try:
        pids = children.read_text().split()
    except OSError:
        return False
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state in ("Z", "X"):
            return True
    return False


def _server_log(data: Path) -> str:
    parts = []
    for name in ("server.log", "logs/milvus-stdout.log", "logs/milvus-stderr.log"):
        path = data / name
        if path.is_file():
            lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
            errors = [x for x in lines if "[ERROR]" in x or "[FATAL]" in x or "panic" in x]
            parts.append(f"--- {name}:\n" + "\n".join((errors or lines)[-8:])[-2000:])
    return "\n".join(parts)


def _wait_ready(uri: str, proc: subprocess.Popen, data: Path) -> None:
    from pymilvus import MilvusClient

    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None or _server_died(proc):
            msg = f"milvus-server stopped during its start:\n{_server_log(data)}"
            raise RuntimeError(msg)
        try:
            client = MilvusClient(uri, timeout=5, dedicated=True)
            client.list_collections()
            client.close()
            return
        except Exception:
            time.sleep(2)
    msg = (
        f"milvus-server did not answer at {uri} within {SERVER_START_TIMEOUT} s:\n"
        f"{_server_log(data)}"
    )
    raise TimeoutError(msg)


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT (SIGTERM can hang the server), then the whole process group if needed."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    try:  # the milvus binary, should the wrapper have left it behind
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory) -> str:
    """A real Milvus standalone server (``pip install milvus``), started for the test run
    on free ports in a temporary folder and stopped with SIGINT afterwards; its URI.

    A server that stops during its start or does not answer within
    :data:`SERVER_START_TIMEOUT` seconds fails the tests that use it, with its log.
    """
    binary = shutil.which("milvus-server") or str(Path(sys.executable).with_name("milvus-server"))
    if importlib.util.find_spec("milvus") is None or not Path(binary).exists():
        pytest.skip("the Milvus server package is not installed (pip install -e '.[dev]')")
    data = tmp_path_factory.mktemp("milvus-server")
    ports = {name: _free_port() for name in _SERVER_PORTS}
    cmd = [binary, "--data", str(data)]
    for name, port in ports.items():
        cmd += [f"--{name}", str(port)]
    env = {
        **os.environ,
        "ETCD_CONFIG_PATH": str(_etcd_config(data / "etcd.yaml", ports["etcd-port"])),
    }
    with open(data / "server.log", "w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    uri = f"http://127.0.0.1:{ports['proxy-port']}"
    try:
        _wait_ready(uri, proc, data)
        yield uri
    finally:
        _stop(proc)
        shutil.rmtree(data / "bin", ignore_errors=True)  # 250 MB of unpacked binaries


@pytest.fixture(scope="session")
def lab_file(tmp_path_factory, atlas) -> str:
    """A user's labelled file: 80 real atlas cells, their own label column (one label no
    ontology knows), a tissue column, 3,000 genes, raw counts."""
    rng = np.random.default_rng(0)
    rows = np.concatenate(
        [
            rng.choice(np.flatnonzero(atlas.obs["tissue"] == t), n, replace=False)
            for t, n in (("blood", 50), ("pancreas", 30))
        ]
    )
    sub = atlas[np.sort(rows)]
    genes = np.flatnonzero(np.asarray(sub.X.sum(axis=0)).ravel() > 0)[:3000]
    sub = sub[:, genes]
    labels = sub.obs["cell_type"].astype(str).to_numpy().copy()
    labels[:4] = "my weird cells"
    adata = AnnData(
        X=sub.X.copy(),
        obs={"label": labels, "organ": sub.obs["tissue"].astype(str).to_numpy()},
    )
    adata.obs_names = [n.split(":", 1)[1] for n in sub.obs_names]
    adata.var_names = sub.var_names
    path = tmp_path_factory.mktemp("lab") / "lab_atlas.h5ad"
    adata.write_h5ad(path)
    return str(path)
