"""Opening a Milvus connection: one lock per embedded store, clear errors for the rest.

Milvus Lite lets one process open a store at a time. scagent takes its own ``flock`` on
``<store>.lock`` (beside the ``.db`` folder) before opening, so a second process learns at
once which process holds the store, instead of a traceback or a wait. In one process every
:class:`~scagent.memory.VectorMemory` on the same store shares one embedded server.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from ._config import ENV_URI, is_lite_uri, memory_dir
from ._errors import MemoryStoreBusy, MemoryStoreError, MemoryStoreUnreachable

__all__ = ["Connection", "close", "open_client"]

logger = logging.getLogger("scagent")


@dataclass
class _LiteHandle:
    fd: int | None
    refs: int


_LITE: dict[str, _LiteHandle] = {}
#: No keepalive pings to the embedded server (a thread of this process): pymilvus pings
#: every 10 s, and Milvus Lite's gRPC server answers a long call (a large batch search on
#: a busy machine) with "too_many_pings" GOAWAYs, which break the call.
_LITE_GRPC = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": False}
_LITE_GUARD = threading.Lock()


@dataclass
class Connection:
    """An open Milvus client and where it points."""

    client: object
    uri: str
    lite_path: Path | None


def _holder(lock_path: Path) -> str:
    try:
        text = lock_path.read_text().strip()
    except OSError:
        text = ""
    return f" ({text})" if text else ""


def _busy(path: Path, holder: str) -> MemoryStoreBusy:
    msg = (
        f"The memory store {path} is in use by another scagent process{holder}. Milvus Lite "
        "lets one process open a store at a time: wait for that process to finish, or set "
        f"{ENV_URI}=http://host:19530 to share one Milvus server between processes."
    )
    return MemoryStoreBusy(msg)


def _lock_lite(path: Path) -> None:
    """Take (or share, within this process) the store's lock; raise if another has it."""
    key = str(path)
    with _LITE_GUARD:
        handle = _LITE.get(key)
        if handle is not None:
            handle.refs += 1
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: Milvus Lite's own lock decides
            _LITE[key] = _LiteHandle(None, 1)
            return
        lock_path = path.with_name(path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise _busy(path, _holder(lock_path)) from None
        os.ftruncate(fd, 0)
        command = " ".join(os.path.basename(a) for a in sys.argv[:2])
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}: {command}".encode())
        _LITE[key] = _LiteHandle(fd, 1)


def _unlock_lite(path: Path) -> None:
    key = str(path)
    with _LITE_GUARD:
        handle = _LITE.get(key)
        if handle is None:
            return
        handle.refs -= 1
        if handle.refs > 0:
            return
        del _LITE[key]
        try:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(key)
        finally:
            if handle.fd is not None:
                import fcntl

                os.ftruncate(handle.fd, 0)
                fcntl.flock(handle.fd, fcntl.LOCK_UN)
                os.close(handle.fd)


def _lite_open_error(path: Path, err: Exception) -> MemoryStoreError:
    lock = path / "LOCK"
    try:
        import fcntl

        with open(lock, "a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except ImportError:  # pragma: no cover - Windows
        pass
    except OSError:  # Milvus Lite's own lock is held: a process other than scagent
        return _busy(path, " (not a scagent process: it holds Milvus Lite's own lock)")
    msg = (
        f"Cannot open the memory store {path}: {err}. Check that the folder is writable, "
        f"or set {ENV_URI} to another store."
    )
    return MemoryStoreError(msg)


def open_client(uri: str, *, token: str = "", timeout: float = 10.0) -> Connection:
    """Connect to the Milvus database at ``uri`` (a Lite ``.db`` path or a server URI).

    Raises
    ------
    MemoryStoreBusy
        Another process holds the Lite store.
    MemoryStoreUnreachable
        The server did not answer within ``timeout`` seconds.
    MemoryStoreError
        Any other failure to open the store.
    """
    try:
        from pymilvus import MilvusClient
    except ImportError as err:  # pragma: no cover - a core dependency
        msg = "The vector memory needs pymilvus and milvus-lite: pip install scagent."
        raise MemoryStoreError(msg) from err
    if is_lite_uri(uri):
        # the same spelling as Milvus Lite's own registry of open stores (abspath)
        path = Path(os.path.abspath(Path(uri).expanduser()))
        _lock_lite(path)
        try:
            client = MilvusClient(
                str(path), timeout=timeout, dedicated=True, grpc_options=_LITE_GRPC
            )
        except Exception as err:
            _unlock_lite(path)
            raise _lite_open_error(path, err) from None
        return Connection(client, str(path), path)
    try:
        client = MilvusClient(uri, token=token, timeout=timeout, dedicated=True)
    except Exception as err:
        reason = getattr(err, "message", None) or str(err) or type(err).__name__
        msg = (
            f"Cannot reach the Milvus server at {uri} within {timeout:g} s ({reason}). "
            f"Start the server, or set {ENV_URI} to another URI (unset it to use the "
            f"embedded store in {memory_dir()})."
        )
        raise MemoryStoreUnreachable(msg) from None
    return Connection(client, uri, None)


def close(conn: Connection) -> None:
    """Close the client; the last one on a Lite store stops its server and frees the lock."""
    try:
        conn.client.close()
    finally:
        if conn.lite_path is not None:
            _unlock_lite(conn.lite_path)
