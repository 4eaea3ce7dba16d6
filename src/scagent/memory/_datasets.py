"""The dataset store: reference datasets as files, listed in a manifest switched atomically.

Layout under ``<sa.settings.data_dir>/memory/datasets``::

    manifest.json        the current list of datasets (replaced in one os.replace)
    manifest.prev.json   the list before the last update
    files/<name>-<sha>.h5ad

The bundled atlas is the store's first content, registered by reference (never copied).
Every update writes its new file first, then the new manifest beside the old one, then
switches with :func:`os.replace`; files that neither the current nor the previous manifest
names are removed only after a successful switch. So a crash or ``kill -9`` at any moment
leaves the old or the new list, each with all its files.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd
from anndata import AnnData

from .._errors import InputDataError
from .._files import atomic_file, file_lock, file_sha256, fsync_dir
from ._config import memory_dir
from ._harmonise import LabelReport, valid_name

__all__ = ["ATLAS", "CRASHPOINT_ENV", "DatasetStore"]

#: Name of the bundled atlas in the store.
ATLAS = "atlas"
#: Testing hook: the writer pauses (sleeps) at this named point of an update, so a test can
#: kill it there: ``file-written``, ``manifest-written`` or ``switched``.
CRASHPOINT_ENV = "SCAGENT_MEMORY_CRASHPOINT"
_FORMAT = "scagent-datasets"


def _pause(point: str) -> None:
    if os.environ.get(CRASHPOINT_ENV) == point:
        print(f"scagent: paused at {point}", file=sys.stderr, flush=True)
        time.sleep(3600)


def _readable(path: Path) -> None:
    """``mkstemp`` makes private files; the store's files are shared like installed ones."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _atlas_path() -> Path:
    with resources.as_file(
        resources.files("scagent.datasets") / "data" / "reference_atlas.h5ad"
    ) as p:
        return Path(p)


def _summary(obs: pd.DataFrame, n_genes: int) -> dict:
    per_type = {
        str(t): {str(k): int(v) for k, v in sub["cell_type"].value_counts().items() if v}
        for t, sub in obs.groupby("tissue", observed=True)
    }
    return {
        "n_cells": len(obs),
        "n_genes": int(n_genes),
        "cells_per_tissue": {t: sum(c.values()) for t, c in per_type.items()},
        "cells_per_type": per_type,
    }


def _read_obs(path: Path) -> tuple[pd.DataFrame, int]:
    """``obs`` and the number of genes of an ``.h5ad`` without reading its matrix."""
    import h5py

    try:
        from anndata.io import read_elem
    except ImportError:  # anndata < 0.11
        from anndata.experimental import read_elem
    with h5py.File(path, "r") as f:
        var = f["var"]
        return read_elem(f["obs"]), len(var[var.attrs["_index"]])


@lru_cache(maxsize=1)
def _atlas_entry() -> dict:
    path = _atlas_path()
    sha = file_sha256(path)
    return {
        "name": ATLAS,
        "file": None,
        "bundled": True,
        "source": "bundled with scagent (scagent.datasets.reference_atlas)",
        "sha256": sha,
        "size": path.stat().st_size,
        "reference_version": f"atlas-{sha[:16]}",
        "version": 1,
        "created": datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds"),
        "values": "counts",
        "labels": {"unmatched": {}},
        **_summary(*_read_obs(path)),
    }


class DatasetStore:
    """Reference datasets scagent annotates against and trains plugins on.

    Parameters
    ----------
    root
        Folder of the store (default ``<sa.settings.data_dir>/memory/datasets``).
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else memory_dir() / "datasets"

    @property
    def manifest_path(self) -> Path:
        """The current manifest."""
        return self.root / "manifest.json"

    # -- reading -------------------------------------------------------------------
    def manifest(self) -> dict:
        """The current manifest (the bundled atlas alone while nothing was added)."""
        try:
            text = self.manifest_path.read_text()
        except FileNotFoundError:
            return {"format": _FORMAT, "generation": 0, "updated": None, "datasets": {}}
        return json.loads(text)

    def _entries(self) -> dict[str, dict]:
        entries = {ATLAS: _atlas_entry()}
        entries.update(self.manifest()["datasets"])
        return entries

    def names(self) -> list[str]:
        """Dataset names, the atlas first."""
        return list(self._entries())

    def entry(self, name: str) -> dict:
        """The manifest entry of ``name`` (:class:`KeyError` listing the names if absent)."""
        entries = self._entries()
        if name not in entries:
            msg = f"No dataset {name!r} in the store {self.root}; it has {list(entries)}."
            raise KeyError(msg)
        return entries[name]

    def table(self) -> pd.DataFrame:
        """One row per dataset: name, cells, genes, tissues, cell types, unmatched labels,
        values, version, created, source."""
        rows = []
        for name, e in self._entries().items():
            rows.append(
                {
                    "name": name,
                    "cells": e["n_cells"],
                    "genes": e["n_genes"],
                    "tissues": len(e["cells_per_tissue"]),
                    "cell_types": len({t for c in e["cells_per_type"].values() for t in c}),
                    "unmatched_labels": len(e["labels"]["unmatched"]),
                    "values": e["values"],
                    "version": e["version"],
                    "created": e["created"],
                    "source": e["source"],
                }
            )
        return pd.DataFrame(rows)

    def path(self, name: str) -> Path:
        """The file holding dataset ``name``."""
        e = self.entry(name)
        return _atlas_path() if e.get("bundled") else self.root / e["file"]

    def load(self, name: str) -> AnnData:
        """Dataset ``name`` (raw counts in ``X``, harmonised ``obs``)."""
        import anndata as ad

        e = self.entry(name)
        if e.get("bundled"):
            from ..datasets import reference_atlas

            return reference_atlas()
        path = self.root / e["file"]
        if not path.is_file() or path.stat().st_size != e["size"]:
            msg = (
                f"Dataset {name!r}: its file {path} is missing or has the wrong size; "
                f"add it again (scagent memory add ... --name {name} --replace)."
            )
            raise InputDataError(msg)
        return ad.read_h5ad(path)

    def verify(self) -> list[str]:
        """Problems found by checking every file's size and sha256 (empty when sound)."""
        problems = []
        for name, e in self.manifest()["datasets"].items():
            path = self.root / e["file"]
            if not path.is_file():
                problems.append(f"{name}: {path} is missing")
            elif file_sha256(path) != e["sha256"]:
                problems.append(f"{name}: {path} does not match its checksum")
        return problems

    # -- writing -------------------------------------------------------------------
    def add(
        self,
        adata: AnnData,
        *,
        name: str,
        source: str,
        report: LabelReport,
        replace: bool = False,
    ) -> dict:
        """Store a harmonised dataset (see :func:`harmonise_reference`) under ``name``.

        Returns
        -------
        The new manifest entry.
        """
        valid_name(name)
        if name == ATLAS:
            msg = f"{ATLAS!r} is the bundled atlas; choose another name."
            raise InputDataError(msg)
        files = self.root / "files"
        files.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / ".lock"):
            old = self.manifest()
            if name in old["datasets"] and not replace:
                msg = f"The store already has a dataset {name!r}; remove it or add with replace."
                raise InputDataError(msg)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".h5ad.tmp", dir=files)
            os.close(fd)
            tmp = Path(tmp)
            try:
                adata.write_h5ad(tmp, compression="gzip")
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                _readable(tmp)
                sha = file_sha256(tmp)
                final = files / f"{name}-{sha[:16]}.h5ad"
                os.replace(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
            fsync_dir(files)
            _pause("file-written")
            previous = old["datasets"].get(name)
            entry = {
                "name": name,
                "file": f"files/{final.name}",
                "bundled": False,
                "source": source,
                "sha256": sha,
                "size": final.stat().st_size,
                "reference_version": f"{name}-{sha[:16]}",
                "version": (previous["version"] + 1) if previous else 1,
                "created": _now(),
                "values": report.values,
                "labels": {
                    "unmatched": report.unmatched,
                    "n_dropped": report.n_dropped,
                    "mapping": report.table.to_dict(orient="records"),
                },
                **_summary(adata.obs, adata.n_vars),
            }
            new = {**old, "datasets": {**old["datasets"], name: entry}}
            self._switch(old, new)
        return entry

    def remove(self, name: str) -> dict:
        """Take dataset ``name`` out of the store.

        Returns
        -------
        Its manifest entry (its file is deleted after the next successful update).
        """
        if name == ATLAS:
            msg = f"The bundled atlas cannot be removed; the store has {self.names()}."
            raise InputDataError(msg)
        with file_lock(self.root / ".lock"):
            old = self.manifest()
            if name not in old["datasets"]:
                msg = f"No dataset {name!r} in the store {self.root}; it has {self.names()}."
                raise KeyError(msg)
            entry = old["datasets"][name]
            new = {**old, "datasets": {k: v for k, v in old["datasets"].items() if k != name}}
            self._switch(old, new)
        return entry

    def _write_json(self, path: Path, data: dict) -> None:
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(data, indent=1))

    def _switch(self, old: dict, new: dict) -> None:
        """Make ``new`` the current manifest, keep ``old`` as the previous one, then remove
        the files neither names."""
        new = {**new, "format": _FORMAT, "generation": old["generation"] + 1, "updated": _now()}
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_json(self.root / "manifest.prev.json", old)
        fd, tmp = tempfile.mkstemp(prefix=".manifest.", suffix=".tmp", dir=self.root)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(new, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            _readable(Path(tmp))
            _pause("manifest-written")
            os.replace(tmp, self.manifest_path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        fsync_dir(self.root)
        _pause("switched")
        keep = {e["file"] for m in (old, new) for e in m["datasets"].values()}
        for path in (self.root / "files").glob("*"):
            if f"files/{path.name}" not in keep:
                path.unlink(missing_ok=True)
        for path in self.root.glob(".*.tmp"):  # left by a writer that was killed
            path.unlink(missing_ok=True)
