"""File helpers: crash-safe file and folder writes (fill aside, then rename), locks and
checksums.

A folder is replaced in one step with Linux's ``renameat2`` (``RENAME_EXCHANGE`` swaps the new
folder and the old one atomically, ``RENAME_NOREPLACE`` refuses to overwrite). Where it is
missing (macOS, Windows, old kernels, some network file systems) a new folder still appears
in one rename, and replacing one falls back to two renames, with a moment without it.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "atomic_file",
    "atomic_folder",
    "file_lock",
    "file_sha256",
    "fsync_dir",
    "make_readable",
]

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
# the call or the flag is not supported by this kernel, C library or file system
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def _load_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a C library older than glibc 2.28, or musl
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_renameat2 = _load_renameat2()


def _rename2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; ``False`` where it is unsupported (nothing was done)."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a directory's entries (new, renamed or removed names) to disk (POSIX only)."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows: directories cannot be opened
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    fsync_dir(folder)


def _move_new(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` to ``dest``, which must not exist (:class:`FileExistsError` if it does)."""
    try:
        if _rename2(tmp, dest, _RENAME_NOREPLACE):
            return
        if dest.exists():  # plain rename would replace an empty folder silently
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dest))
        tmp.rename(dest)
    except OSError as err:
        if err.errno in (errno.EEXIST, errno.ENOTEMPTY) and not isinstance(err, FileExistsError):
            raise FileExistsError(err.errno, os.strerror(err.errno), str(dest)) from err
        raise


def _move_over(tmp: Path, dest: Path) -> None:
    """Put ``tmp`` in the place of ``dest`` (whose old content is removed)."""
    for _ in range(2):
        if dest.exists():
            if _rename2(tmp, dest, _RENAME_EXCHANGE):
                shutil.rmtree(tmp)  # tmp now holds the old content
                return
            break
        try:
            _move_new(tmp, dest)
            return
        except FileExistsError:  # it appeared meanwhile: swap with it
            continue
    # no atomic exchange on this system: two renames, with a moment without dest
    old = dest.with_name(f".{dest.name}.old")
    if old.exists():
        shutil.rmtree(old)
    dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old)


def _readable_file(path: Path) -> None:
    """``mkstemp`` makes private files; scagent's files are shared like installed ones."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


@contextmanager
def atomic_file(dest: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; write the file there, and on success it
    becomes ``dest`` in one rename.

    A crash or an exception leaves ``dest`` as it was (the old file, or none) and removes
    the temporary file. The file and its folder are flushed to disk before the call
    returns, and the file gets the permissions of a normally created one.

    Parameters
    ----------
    dest
        The file to write (its folder is created if needed).
    suffix
        Ending of the temporary file's name (e.g. ``".h5ad"`` for writers that check it).
    """
    dest = Path(dest).expanduser()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix, dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        _readable_file(tmp)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(dest: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside ``dest``; on success it becomes ``dest``.

    A crash or an exception leaves ``dest`` as it was (the old content, or nothing); the
    temporary folder is removed. The files, the folder and its parent are flushed to disk
    before the call returns. With ``replace=True`` an existing ``dest`` is swapped for the
    new folder in one atomic step where the system allows (see the module's notes), so a
    reader always finds the old or the new folder. With ``replace=False`` an existing
    ``dest`` is an error (:class:`FileExistsError`, also when it appears while the folder is
    filled), which makes version folders write-once.
    """
    dest = Path(dest).expanduser()
    new_parent = not dest.parent.exists()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not replace and dest.exists():
        msg = f"{dest} already exists."
        raise FileExistsError(msg)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        yield tmp
        make_readable(tmp)
        _fsync_tree(tmp)
        if replace:
            _move_over(tmp, dest)
        else:
            _move_new(tmp, dest)
        fsync_dir(dest.parent)
        if new_parent:  # e.g. a plugin's first version: its name folder is new too
            fsync_dir(dest.parent.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) across processes.

    Uses ``flock``, so the lock goes with the process: a crashed holder never leaves it
    taken. Where ``flock`` is missing (Windows) this does nothing; callers must still cope
    with a lost race (e.g. :class:`FileExistsError` from :func:`atomic_folder`).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
