"""The plugins of a stored dataset: where they live, whether they fit its content, removal.

``scagent plugins train --reference NAME`` (:func:`scagent.plugins.train_dataset_plugins`)
trains a tissue-assignment plugin and one cell-type plugin per tissue on dataset ``NAME``
of the dataset store, into a folder of its own::

    <sa.settings.data_dir>/plugins/references/<NAME>/<plugin>/v<N>/

Each plugin's manifest records the content it was trained on (``training['reference_dataset']``:
the dataset's name, checksum, reference version and store version). Annotating against
``NAME`` uses these plugins only while the stored dataset is still that content: a dataset
replaced or re-added under the same name is not annotated with plugins trained on the old
one. Removing the dataset (``scagent memory remove NAME``) removes its folder.

Nothing here imports torch: the folder and the manifests are read as plain files.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

from .._settings import settings
from ._datasets import ATLAS
from ._harmonise import valid_name

__all__ = [
    "RECORD_KEY",
    "dataset_plugins",
    "dataset_plugins_path",
    "dataset_record",
    "remove_dataset_plugins",
    "stale_dataset_plugins",
]

logger = logging.getLogger("scagent")

#: Key of a plugin manifest's ``training`` record naming the dataset content it learnt from.
RECORD_KEY = "reference_dataset"
_ASIDE = ".removed-"
_MANIFEST = "manifest.json"


def dataset_plugins_path(name: str) -> Path:
    """The folder of the plugins trained on stored dataset ``name``.

    Parameters
    ----------
    name
        A dataset name of the dataset store (not ``"atlas"``: the atlas's plugins are the
        default ones, ``<data dir>/plugins`` and the shipped ones).

    Returns
    -------
    ``<sa.settings.data_dir>/plugins/references/<name>`` (it may not exist).
    """
    valid_name(name)
    if name == ATLAS:
        from .._errors import InputDataError

        msg = (
            f"{ATLAS!r} is the bundled atlas: its plugins are the default ones; train them "
            "with `scagent plugins train` (no FILE, no --reference)."
        )
        raise InputDataError(msg)
    return settings.data_dir / "plugins" / "references" / name


def dataset_record(entry: dict) -> dict:
    """What a plugin's manifest records about the stored dataset it was trained on.

    Parameters
    ----------
    entry
        The dataset's manifest entry (:meth:`~scagent.memory.DatasetStore.entry`).

    Returns
    -------
    ``name``, ``sha256``, ``reference_version`` and ``store_version`` of the dataset.
    """
    return {
        "name": entry["name"],
        "sha256": entry["sha256"],
        "reference_version": entry["reference_version"],
        "store_version": entry["version"],
    }


def _latest_manifests(folder: Path) -> dict[str, dict | None]:
    """The latest version's manifest of each plugin in ``folder`` (``None``: unreadable)."""
    out: dict[str, dict | None] = {}
    if not folder.is_dir():
        return out
    for plugin in sorted(p for p in folder.iterdir() if p.is_dir()):
        versions = [
            (int(v.name[1:]), v)
            for v in plugin.iterdir()
            if v.name[:1] == "v" and v.name[1:].isdigit() and (v / _MANIFEST).is_file()
        ]
        if not versions:
            continue
        path = max(versions)[1] / _MANIFEST
        try:
            out[plugin.name] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            out[plugin.name] = None
    return out


def stale_dataset_plugins(name: str, version: str) -> list[str] | None:
    """The plugins of dataset ``name`` that were not trained on its content ``version``.

    Parameters
    ----------
    name
        A dataset name of the dataset store.
    version
        The dataset's current reference version
        (:attr:`~scagent.memory.ReferenceData.version`, the store entry's
        ``reference_version``).

    Returns
    -------
    ``None`` when the dataset has no trained plugins; else the names of those whose
    manifest records other content (or none, or cannot be read): an empty list when
    all of them fit.
    """
    manifests = _latest_manifests(dataset_plugins_path(name))
    if not manifests:
        return None
    return [
        plugin
        for plugin, m in manifests.items()
        if m is None
        or (m.get("training", {}).get(RECORD_KEY) or {}).get("reference_version") != version
    ]


def dataset_plugins(name: str, *, version: str | None = None):
    """The plugins trained on stored dataset ``name``, when they fit its current content.

    Parameters
    ----------
    name
        A dataset name of the dataset store.
    version
        The content they must have been trained on (default: the store's current
        ``reference_version`` of ``name``).

    Returns
    -------
    A :class:`~scagent.plugins.PluginRegistry` of the dataset's plugin folder, or ``None``
    when none were trained (``scagent plugins train --reference NAME``) or they were
    trained on an earlier content of the dataset (then a warning is logged).

    Raises
    ------
    KeyError
        When ``version`` is not given and the store has no dataset ``name``.
    """
    if version is None:
        from ._datasets import DatasetStore

        version = DatasetStore().entry(name)["reference_version"]
    stale = stale_dataset_plugins(name, version)
    if stale is None:
        return None
    if stale:
        logger.warning(
            "The plugins %s in %s were not trained on the current content of dataset %r "
            "(it was replaced or re-added since): they are not used. Train them again: "
            "scagent plugins train --reference %s",
            stale,
            dataset_plugins_path(name),
            name,
            name,
        )
        return None
    from ..plugins import PluginRegistry

    return PluginRegistry([dataset_plugins_path(name)])


def remove_dataset_plugins(name: str) -> Path | None:
    """Delete the plugins trained on dataset ``name``.

    The folder is first renamed aside in one step (so no reader finds it half deleted),
    then deleted; folders left aside by an interrupted removal are deleted too.

    Parameters
    ----------
    name
        A dataset name of the dataset store.

    Returns
    -------
    The folder that was removed, or ``None`` when there was none.
    """
    folder = dataset_plugins_path(name)
    removed = None
    if folder.is_dir():
        aside = folder.with_name(f"{_ASIDE}{name}-{os.getpid()}-{time.time_ns()}")
        try:
            os.replace(folder, aside)
            removed = folder
        except FileNotFoundError:  # removed meanwhile by another process
            pass
    if folder.parent.is_dir():
        for path in folder.parent.glob(f"{_ASIDE}*"):
            shutil.rmtree(path, ignore_errors=True)
    return removed
