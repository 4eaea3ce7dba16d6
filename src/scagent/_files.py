"""File helpers: crash-safe folder writes (fill aside, then rename) and checksums."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_folder", "file_sha256", "make_readable"]


def make_readable(folder: Path) -> None:
    """``mkdtemp`` makes a private folder; saved models are shared like installed files."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


@contextmanager
def atomic_folder(dest: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside ``dest``; on success it becomes ``dest``.

    A crash or an exception leaves ``dest`` as it was (the old content, or nothing); the
    temporary folder is removed. With ``replace=False`` an existing ``dest`` is an error
    (:class:`FileExistsError`), which makes version folders write-once.
    """
    dest = Path(dest).expanduser()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not replace and dest.exists():
        msg = f"{dest} already exists."
        raise FileExistsError(msg)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        yield tmp
        make_readable(tmp)
        _fsync_tree(tmp)
        if not replace:
            tmp.rename(dest)  # fails if dest appeared meanwhile (non-empty) or exists
            return
        old = dest.with_name(f".{dest.name}.old")
        if dest.exists():
            if old.exists():
                shutil.rmtree(old)
            dest.rename(old)
        tmp.rename(dest)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
