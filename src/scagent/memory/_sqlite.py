"""The memory's SQLite database: WAL mode, one short connection per operation.

WAL lets readers work while one process writes; a busy timeout makes a second writer wait
its turn instead of failing. Each operation opens and closes its own connection, so the
same database is safe to use from several processes and threads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from ._config import memory_dir

__all__ = ["connect", "history_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started TEXT NOT NULL,
    request TEXT NOT NULL,
    intent TEXT,
    tools TEXT,
    durations TEXT,
    outcome TEXT,
    status TEXT NOT NULL,
    seconds REAL
);
CREATE TABLE IF NOT EXISTS traces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    query_id INTEGER REFERENCES queries(id),
    tool TEXT NOT NULL,
    started TEXT NOT NULL,
    seconds REAL,
    status TEXT NOT NULL,
    inputs TEXT,
    outputs TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS traces_query ON traces(query_id);
CREATE TABLE IF NOT EXISTS embedding_cache (
    file_sha256 TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    key TEXT NOT NULL,
    n_obs INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    obs_sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    info TEXT,
    created TEXT NOT NULL,
    last_used TEXT NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (file_sha256, model_sha256, key)
);
"""


def history_path() -> Path:
    """``<sa.settings.data_dir>/memory/history.sqlite``."""
    return memory_dir() / "history.sqlite"


@contextmanager
def connect(path: Path, *, timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """A connection in WAL mode with the schema in place; commits on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=timeout)) as con:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        con.executescript(_SCHEMA)
        with con:  # one transaction: committed on success, rolled back on error
            yield con
