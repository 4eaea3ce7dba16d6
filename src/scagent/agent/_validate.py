"""Validation of a parsed request and the plan of tools it leads to."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from ._schema import Request

__all__ = ["allowed_dirs", "plan", "resolve_path", "validate"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 +\-_/(),.']{0,79}$")


def allowed_dirs(extra: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """The directories the agent may read: the current one, the scagent data directory and
    ``extra`` (all resolved, symbolic links followed)."""
    from .._settings import settings

    dirs = [Path.cwd(), settings.data_dir, *map(Path, extra)]
    out: list[Path] = []
    for d in dirs:
        r = d.expanduser().resolve()
        if r not in out:
            out.append(r)
    return out


def resolve_path(file_path: str, base: Path | None = None) -> Path:
    """The absolute, symlink-free path of ``file_path`` (relative to ``base`` or the cwd)."""
    p = Path(file_path).expanduser()
    if not p.is_absolute():
        p = (base or Path.cwd()) / p
    return p.resolve()


def validate(
    request: Request,
    *,
    known: Sequence[str],
    allowed: Sequence[Path] | None = None,
) -> Request:
    """Check a request before anything runs; problems are added to ``request.problems``.

    Parameters
    ----------
    request
        The parsed request (changed in place and returned).
    known
        Tissues with a plugin.
    allowed
        Directories files may be read from (default :func:`allowed_dirs`).

    Returns
    -------
    The request. ``refused`` is set for a path outside the allowed directories.
    """
    allowed = list(allowed) if allowed is not None else allowed_dirs()
    problems = request.problems
    if request.file_path is None:
        problems.append("no data file named in the request (give its path, e.g. data/x.h5ad)")
    else:
        path = resolve_path(request.file_path)
        if not any(path == d or path.is_relative_to(d) for d in allowed):
            request.refused = True
            problems.append(
                f"refused: {request.file_path!r} is outside the allowed directories "
                f"({', '.join(map(str, allowed))}); copy the file there or allow its folder "
                "(--allow-dir)"
            )
        elif not path.exists():
            problems.append(f"file {request.file_path!r} does not exist")
        elif not os.access(path, os.R_OK) or (path.is_dir() and not os.access(path, os.X_OK)):
            problems.append(f"file {request.file_path!r} is not readable")
    needs_tissue = request.requirement in ("get_cell_w_tissue", "add_cell")
    if needs_tissue and request.tissue is None:
        problems.append("adding a cell type needs the tissue the cells come from")
    elif needs_tissue and request.tissue not in known:
        problems.append(f"unknown tissue {request.tissue!r}; known tissues: {', '.join(known)}")
    if request.requirement == "add_cell":
        if not request.cell_type:
            problems.append("adding a cell type needs its name (e.g. called 'tanycyte')")
        elif not _NAME.match(request.cell_type):
            problems.append(f"cell type name {request.cell_type!r} has unexpected characters")
    return request


def plan(request: Request) -> list[str]:
    """The tools to run, in order; empty when the request has problems."""
    if request.problems or request.refused:
        return []
    if request.requirement == "add_cell":
        return ["add_cell_type"]
    if request.requirement == "get_tissue":
        return ["memory_search", "annotate"]
    return ["memory_search", "annotate", "detect_novel"]
