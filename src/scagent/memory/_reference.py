"""The one door to labelled reference cells: every expert and trainer reads them here."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from anndata import AnnData

from .._files import file_sha256

__all__ = ["ReferenceData", "reference_data", "resolve_reference"]

#: The ontology-id column, and the prefix of classes whose label matched no ontology term.
_ONTOLOGY = "cell_type_ontology_term_id"
_NAME_PREFIX = "name:"


@dataclass(frozen=True)
class ReferenceData:
    """Labelled reference cells and the version that identifies them.

    Attributes
    ----------
    adata
        Raw counts in ``X``; ``obs`` with ``tissue``, ``cell_type``,
        ``cell_type_ontology_term_id``, ``dataset``, ``donor``; ``var`` with
        ``measured_in_<dataset>`` flags (genes each study measured).
    version
        A string that changes whenever the cells or labels change (used in cache keys).
    name
        ``"atlas"`` for the bundled atlas, else the dataset's name in the dataset store
        (:class:`~scagent.memory.DatasetStore`).
    """

    adata: AnnData
    version: str
    name: str


@cache
def _atlas_version() -> str:
    path = resources.files("scagent.datasets") / "data" / "reference_atlas.h5ad"
    with resources.as_file(path) as p:
        return "atlas-" + file_sha256(p)[:16]


def reference_data(name: str | None = None) -> ReferenceData:
    """The reference cells scagent annotates against.

    Parameters
    ----------
    name
        ``None`` or ``"atlas"``: the bundled reference atlas (see
        :func:`scagent.datasets.reference_atlas`) with the cell types learnt since
        (:func:`scagent.tl.add_cell_type`); any other name: that dataset of the
        dataset store (``scagent memory add``, :class:`~scagent.memory.DatasetStore`).

    Returns
    -------
    The cells with their version. Do not modify ``adata`` in place: copy first.

    Raises
    ------
    KeyError
        When the store has no dataset ``name`` (the message lists the names it has).
    """
    from ._datasets import DatasetStore
    from ._learnt import LEARNT

    if name in (None, "atlas"):
        store = DatasetStore()
        if not store.manifest_path.is_file() or LEARNT not in store.names():
            return ReferenceData(_cached_atlas(), _atlas_version(), "atlas")
        entry = store.entry(LEARNT)
        adata = _atlas_and_learnt(str(store.root), entry["sha256"])
        return ReferenceData(adata, f"{_atlas_version()}+{entry['reference_version']}", "atlas")
    store = DatasetStore()
    entry = store.entry(name)
    adata = _cached_dataset(str(store.root), name, entry["sha256"])
    return ReferenceData(adata, entry["reference_version"], name)


@lru_cache(maxsize=4)
def _cached_dataset(root: str, name: str, sha256: str) -> AnnData:
    """A stored dataset, read once per content (the checksum is part of the key), its
    unmatched labels as ``name:<label>`` classes."""
    from ._datasets import DatasetStore

    return _named_classes(DatasetStore(root).load(name))


def _named_classes(adata: AnnData) -> AnnData:
    """Labels without a Cell Ontology id become their own ``name:<label>`` classes (an
    empty id would merge every such type into one class)."""
    ids = adata.obs[_ONTOLOGY].astype(str)
    names = adata.obs["cell_type"].astype(str)
    adata.obs[_ONTOLOGY] = ids.where(ids != "", _NAME_PREFIX + names).astype("category")
    return adata


def resolve_reference(
    reference, *, plugins=None, experts: tuple[str, ...] = ()
) -> tuple[object, object, tuple[str, ...], str | None]:
    """What annotation runs against a ``reference`` argument.

    Parameters
    ----------
    reference
        ``None`` (the bundled atlas), a dataset name of the store (``"atlas"`` or one added
        with ``scagent memory add``), a :class:`ReferenceData` or a labelled AnnData.
    plugins
        The plugins asked for (``None``: the default ones).
    experts
        The experts asked for.

    Returns
    -------
    The reference (names resolved to :class:`ReferenceData`), the plugins and the experts
    to run, and a note when the plugin expert was left out. A user's dataset is annotated
    against alone: with ``plugins=None`` its own plugins run
    (:func:`~scagent.memory.dataset_plugins`, trained with ``scagent plugins train
    --reference NAME``); without them, or when they were trained on an earlier content
    of the dataset, the plugin expert is left out (the default plugins know the bundled
    atlas's classes).

    Raises
    ------
    InputDataError
        When the store has no dataset of that name.
    """
    from .._errors import InputDataError

    if not isinstance(reference, str):
        return reference, plugins, tuple(experts), None
    try:
        ref = reference_data(reference)
    except KeyError as err:
        raise InputDataError(err.args[0]) from None
    note = None
    if ref.name != "atlas" and plugins is None and "plugin" in experts:
        from ._dataset_plugins import dataset_plugins

        plugins = dataset_plugins(ref.name, version=ref.version)
        if plugins is None:
            experts = tuple(e for e in experts if e != "plugin")
            note = (
                f"Annotated against the dataset {ref.name!r} alone: its reference and marker "
                f"experts. No plugins were trained on {ref.name!r} as it is now (the default "
                "plugins know the bundled atlas's classes), so the plugin expert did not run; "
                f"train them with `scagent plugins train --reference {ref.name}`."
            )
    return ref, plugins, tuple(experts), note


@lru_cache(maxsize=2)
def _atlas_and_learnt(root: str, sha256: str) -> AnnData:
    """The atlas joined with the cell types learnt since (read once per content)."""
    from ._datasets import DatasetStore
    from ._learnt import LEARNT, atlas_with_learnt

    return _named_classes(atlas_with_learnt(_cached_atlas(), DatasetStore(root).load(LEARNT)))


@cache
def _cached_atlas() -> AnnData:
    from ..datasets import reference_atlas

    return reference_atlas()
