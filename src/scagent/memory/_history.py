"""System history: the query log and tool execution traces (the paper's history)."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ._sqlite import connect, history_path

__all__ = ["History", "Trace"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, default=str)


@dataclass
class Trace:
    """One tool run being recorded; set ``outputs`` (JSON-able) before the block ends."""

    tool: str
    inputs: dict | None = None
    outputs: dict | None = field(default=None)
    id: int | None = None


class History:
    """The query log and tool traces, in ``<data_dir>/memory/history.sqlite``.

    Safe for several processes at once (SQLite in WAL mode).

    Parameters
    ----------
    path
        The SQLite file (default ``<sa.settings.data_dir>/memory/history.sqlite``).

    Examples
    --------
    >>> history = History()  # doctest: +SKIP
    >>> qid = history.log_query("annotate pbmc.h5ad", intent={"task": "annotate"})
    >>> with history.trace("annotate", query_id=qid, inputs={"file": "pbmc.h5ad"}) as t:
    ...     t.outputs = {"cells": 2638}
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else history_path()

    def log_query(
        self,
        request: str,
        *,
        intent: dict | None = None,
        tools: list[str] | None = None,
        durations: dict[str, float] | None = None,
        outcome: str = "",
        status: str = "ok",
        seconds: float | None = None,
    ) -> int:
        """Record one request.

        Parameters
        ----------
        request
            The user's text.
        intent
            What the request was parsed into.
        tools
            Tools run, in order.
        durations
            Seconds per tool.
        outcome
            A summary of the answer.
        status
            ``"ok"``, ``"error"``...
        seconds
            Total time.

        Returns
        -------
        The query's id.
        """
        with connect(self.path) as con:
            cur = con.execute(
                "INSERT INTO queries (started, request, intent, tools, durations, outcome,"
                " status, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _now(),
                    request,
                    _json(intent),
                    _json(tools or []),
                    _json(durations or {}),
                    outcome,
                    status,
                    seconds,
                ),
            )
            return int(cur.lastrowid)

    def update_query(self, query_id: int, **fields) -> None:
        """Change fields of a logged query (``outcome``, ``status``, ``tools``...)."""
        allowed = {"intent", "tools", "durations", "outcome", "status", "seconds"}
        bad = set(fields) - allowed
        if bad:
            msg = f"Unknown query fields {sorted(bad)}; allowed: {sorted(allowed)}."
            raise ValueError(msg)
        values = [
            _json(v) if k in ("intent", "tools", "durations") else v for k, v in fields.items()
        ]
        sets = ", ".join(f"{k} = ?" for k in fields)
        with connect(self.path) as con:
            con.execute(f"UPDATE queries SET {sets} WHERE id = ?", (*values, query_id))

    @contextmanager
    def trace(
        self, tool: str, *, query_id: int | None = None, inputs: dict | None = None
    ) -> Iterator[Trace]:
        """Record a tool run: time, status, inputs, outputs and the error if it raised.

        The exception (if any) is recorded and raised again.
        """
        record = Trace(tool, inputs)
        started = _now()
        t0 = time.perf_counter()
        status, error = "ok", None
        try:
            yield record
        except BaseException as err:
            status = "error"
            error = "".join(traceback.format_exception_only(err)).strip()
            raise
        finally:
            with connect(self.path) as con:
                cur = con.execute(
                    "INSERT INTO traces (query_id, tool, started, seconds, status, inputs,"
                    " outputs, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        query_id,
                        tool,
                        started,
                        round(time.perf_counter() - t0, 4),
                        status,
                        _json(inputs),
                        _json(record.outputs),
                        error,
                    ),
                )
                record.id = int(cur.lastrowid)

    def queries(self, *, limit: int = 100) -> pd.DataFrame:
        """The latest ``limit`` queries, newest first (JSON fields decoded)."""
        with connect(self.path) as con:
            frame = pd.read_sql_query(
                "SELECT * FROM queries ORDER BY id DESC LIMIT ?", con, params=(limit,)
            )
        for col in ("intent", "tools", "durations"):
            frame[col] = [None if v is None else json.loads(v) for v in frame[col]]
        return frame

    def traces(self, *, query_id: int | None = None, limit: int = 1000) -> pd.DataFrame:
        """Tool traces (of one query, or the latest ``limit``), in the order they ran."""
        sql = "SELECT * FROM traces"
        params: tuple = ()
        if query_id is not None:
            sql += " WHERE query_id = ?"
            params = (query_id,)
        with connect(self.path) as con:
            frame = pd.read_sql_query(
                f"{sql} ORDER BY id DESC LIMIT {int(limit)}", con, params=params
            )
        frame = frame.iloc[::-1].reset_index(drop=True)
        for col in ("inputs", "outputs"):
            frame[col] = [None if v is None else json.loads(v) for v in frame[col]]
        return frame
