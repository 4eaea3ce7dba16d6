"""Where plugins live: the ones shipped with scagent and the user's own, versioned."""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path

import pandas as pd

from .._files import file_lock
from .._settings import settings
from ._plugin import MANIFEST, Plugin, PluginError

__all__ = ["PluginRegistry", "default_registry", "resolve_registry", "shipped_plugins_path"]

TISSUE_PLUGIN = "tissue"
_VERSION = re.compile(r"^v(\d+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _+-]*$")
_LOCK = ".lock"
_SAVE_TRIES = 20  # lost races tolerated where locks do not reach (other machines, no flock)


def shipped_plugins_path() -> Path:
    """Folder of the plugins shipped with the package."""
    with resources.as_file(resources.files("scagent.plugins") / "data") as p:
        return Path(p)


class PluginRegistry:
    """Versioned plugin folders under one or more roots.

    Layout: ``<root>/<name>/v<N>/{manifest.json, weights.safetensors}``. Versions are
    write-once: saving writes a new version folder atomically (filled aside, then renamed),
    so a crash never leaves a half-written plugin and older versions stay loadable.
    Concurrent saves of one name, from threads or processes, get distinct versions: they
    take turns on ``<root>/<name>/.lock``, and a save that still finds its version taken
    (a writer the lock does not reach) moves on to the next one.
    Roots are searched in order; new plugins are written to the first.

    Parameters
    ----------
    roots
        Folders, first = writable. Default: ``sa.settings.data_dir / "plugins"``, then
        the plugins shipped with scagent.
    """

    def __init__(self, roots: list[str | os.PathLike] | None = None) -> None:
        if roots is None:
            roots = [settings.data_dir / "plugins", shipped_plugins_path()]
        self.roots = [Path(r).expanduser() for r in roots]

    def __repr__(self) -> str:
        return f"PluginRegistry({[str(r) for r in self.roots]})"

    def _versions(self, name: str) -> list[tuple[int, Path]]:
        found = {}
        for root in reversed(self.roots):  # earlier roots win on equal versions
            folder = root / name
            if not folder.is_dir():
                continue
            for sub in folder.iterdir():
                m = _VERSION.match(sub.name)
                if m and (sub / MANIFEST).is_file():
                    found[int(m.group(1))] = sub
        return sorted(found.items())

    def names(self) -> list[str]:
        """Names of all plugins (any version) in any root."""
        out = set()
        for root in self.roots:
            if root.is_dir():
                out.update(p.name for p in root.iterdir() if p.is_dir() and self._versions(p.name))
        return sorted(out)

    def versions(self, name: str) -> list[int]:
        """Saved versions of plugin ``name``, oldest first."""
        return [v for v, _ in self._versions(name)]

    def path(self, name: str, version: int | None = None) -> Path:
        """Folder of a plugin version (the latest by default)."""
        versions = self._versions(name)
        if not versions:
            msg = f"No plugin named {name!r}. Available: {self.names()} (in {self})."
            raise PluginError(msg)
        if version is None:
            return versions[-1][1]
        for v, p in versions:
            if v == version:
                return p
        msg = f"Plugin {name!r} has no version {version}; it has {[v for v, _ in versions]}."
        raise PluginError(msg)

    def manifest(self, name: str, version: int | None = None) -> dict:
        """A plugin's manifest (no weights read)."""
        path = self.path(name, version) / MANIFEST
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as err:
            msg = f"{path} is not valid JSON: {err}"
            raise PluginError(msg) from err

    def load(self, name: str, version: int | None = None) -> Plugin:
        """Load a plugin (the latest version by default)."""
        return Plugin.load(self.path(name, version))

    def save(self, plugin: Plugin) -> Plugin:
        """Save ``plugin`` as the next version of its name in the first root.

        Returns the plugin with its ``version`` set.
        """
        if not _NAME.match(plugin.name):
            msg = (
                f"Plugin name {plugin.name!r} must start with a letter or digit and use only "
                "letters, digits, spaces, '_', '+' and '-'."
            )
            raise PluginError(msg)
        folder = self.roots[0] / plugin.name
        with file_lock(folder / _LOCK):
            for _ in range(_SAVE_TRIES):
                plugin.version = self._next_version(plugin.name)
                try:
                    plugin.save(folder / f"v{plugin.version}", replace=False)
                except FileExistsError:
                    continue  # taken meanwhile by a writer that does not share our lock
                return plugin
        msg = (
            f"Could not save plugin {plugin.name!r} in {folder}: {_SAVE_TRIES} version numbers "
            "in a row were taken by other writers meanwhile. Try again."
        )
        raise PluginError(msg)

    def rollback(self, name: str) -> int:
        """Withdraw the latest version of ``name`` (it must be in the writable root): its
        folder is renamed aside (``rolled-back-v<N>-<time>``, kept on disk), so the
        previous version is the one loaded again.

        Returns
        -------
        The version now current.
        """
        import time

        versions = self._versions(name)
        if len(versions) < 2:
            msg = f"Plugin {name!r} has no earlier version to roll back to ({self})."
            raise PluginError(msg)
        version, path = versions[-1]
        folder = self.roots[0] / name
        if path.parent != folder:
            msg = (
                f"The latest version of {name!r} (v{version}) is in {path.parent}, not in the "
                f"writable root {self.roots[0]}: only plugins you trained can be rolled back."
            )
            raise PluginError(msg)
        with file_lock(folder / _LOCK):
            os.replace(path, folder / f"rolled-back-v{version}-{int(time.time())}")
        return self._versions(name)[-1][0]

    def _next_version(self, name: str) -> int:
        """One more than any version of ``name`` in any root, or any version folder name."""
        taken = self.versions(name)
        folder = self.roots[0] / name
        if folder.is_dir():  # folders without a manifest (being written, damaged) count too
            taken += [int(m.group(1)) for p in folder.iterdir() if (m := _VERSION.match(p.name))]
        return max(taken, default=0) + 1

    def plugin_for(self, tissue: str) -> str:
        """Name of the cell-type plugin of ``tissue``."""
        for name in self.names():
            if name != TISSUE_PLUGIN and (self.manifest(name).get("tissue") or name) == tissue:
                return name
        msg = f"No cell-type plugin for tissue {tissue!r}; tissues: {self.tissues()}."
        raise PluginError(msg)

    def tissues(self) -> list[str]:
        """Tissues that have a cell-type plugin."""
        out = []
        for name in self.names():
            if name == TISSUE_PLUGIN:
                continue
            out.append(self.manifest(name).get("tissue") or name)
        return sorted(out)

    def table(self) -> pd.DataFrame:
        """One row per plugin (latest version): kind, tissue, version, classes, metrics."""
        rows = []
        for name in self.names():
            m = self.manifest(name)  # no weights read: the manifest says it all
            rows.append(
                {
                    "name": name,
                    "kind": m["kind"],
                    "tissue": m["tissue"],
                    "version": m["version"],
                    "versions": len(self.versions(name)),
                    "n_classes": len(m["head"]["slots"]),
                    "n_train_cells": m.get("training", {}).get("n_train"),
                    "val_macro_f1": m.get("metrics", {}).get("macro_f1"),
                    "adapter_trained": m.get("metrics", {}).get("adapter_trained"),
                    "base_model": m["base_model"]["name"],
                    "created": m["created"],
                    "path": str(self.path(name)),
                }
            )
        return pd.DataFrame(rows)


def default_registry() -> PluginRegistry:
    """The user's plugins, then the shipped ones."""
    return PluginRegistry()


def resolve_registry(plugins: PluginRegistry | str | os.PathLike | None) -> PluginRegistry:
    """A registry from ``None`` (the default one), a folder, or a registry."""
    if plugins is None:
        return default_registry()
    if isinstance(plugins, PluginRegistry):
        return plugins
    return PluginRegistry([plugins])
