"""The one door to labelled reference cells: every expert and trainer reads them here."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from anndata import AnnData

from .._files import file_sha256

__all__ = ["ReferenceData", "reference_data"]


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
        ``"atlas"`` for the bundled atlas.
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
        :func:`scagent.datasets.reference_atlas`).

    Returns
    -------
    The cells with their version. Do not modify ``adata`` in place: copy first.
    """
    if name not in (None, "atlas"):
        msg = f"Unknown reference {name!r}; available: ['atlas']."
        raise KeyError(msg)

    return ReferenceData(_cached_atlas(), _atlas_version(), "atlas")


@cache
def _cached_atlas() -> AnnData:
    from ..datasets import reference_atlas

    return reference_atlas()
