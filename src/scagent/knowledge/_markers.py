"""The marker table: curated marker genes of Cell Ontology terms and tissue signatures.

Built by ``scripts/build_marker_table.py`` from the pegasus marker files and from markers
added with a citation each (see that script). Every row carries its own source.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib import resources

import pandas as pd

from .._errors import InputDataError

__all__ = ["marker_parents", "marker_sets", "marker_table"]

KINDS = ("cell_type", "tissue", "state")

#: Tissue names that select the markers of another context too (``"colon"`` also takes the
#: ``"intestine"`` markers); names are compared lower-case with spaces as underscores.
TISSUE_ALIASES = {
    "colon": ("intestine",),
    "small_intestine": ("intestine",),
    "intestine": ("colon",),
    "gut": ("intestine", "colon"),
    "uterus": ("endometrium",),
    "peripheral_blood": ("blood",),
    "pbmc": ("blood",),
    "marrow": ("bone_marrow",),
}


def _contexts(tissue: str) -> set[str]:
    name = tissue.strip().lower().replace(" ", "_").replace("-", "_")
    return {"any", name, *TISSUE_ALIASES.get(name, ())}


@cache
def _read() -> pd.DataFrame:
    path = resources.files("scagent.knowledge") / "data" / "markers.tsv"
    with resources.as_file(path) as p:
        df = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
    df["weight"] = df["weight"].astype(int)
    return df


def marker_table() -> pd.DataFrame:
    """The bundled marker table, one row per (term, gene, source).

    A long table in the shape of a decoupler network (``term`` is the source, ``gene`` the
    target). Read once from disk; each call returns a copy.

    Returns
    -------
    A DataFrame with the columns

    ``term``
        Cell Ontology id (``"CL:0000236"``), ``"tissue:<name>"`` for a tissue signature or
        ``"state:<name>"`` for a cell state (``"state:cycling"``).
    ``term_label``
        The Cell Ontology label, or the tissue / state name.
    ``kind``
        ``"cell_type"``, ``"tissue"`` or ``"state"``.
    ``gene``
        Current human gene symbol (as in :func:`scagent.knowledge.gene_table`).
    ``weight``
        ``1`` for a positive marker, ``-1`` for a negative one (the cell type lacks it).
    ``context``
        Where the marker applies: ``"any"`` or a tissue (``"pancreas"``, ``"lung"``,
        ``"brain"``...); for tissue signatures, the tissue itself.
    ``parent``
        For cell types: the nearest Cell Ontology ancestor among the table's own terms (the
        marker hierarchy: a subtype's markers refine its parent's), ``""`` for a top term.
    ``source``
        Where the marker comes from: a pegasus marker file (BSD-3) or a citation (authors,
        year, journal, DOI).
    ``note``
        The pegasus cell-type name and marker-group comment, or what the marker shows.
    """
    return _read().copy()


def marker_parents() -> dict[str, str]:
    """Cell-type term to its parent in the marker hierarchy (``""`` for a top term)."""
    df = _read()
    df = df[df["kind"] == "cell_type"]
    return dict(zip(df["term"], df["parent"]))


def marker_sets(
    kind: str = "cell_type",
    *,
    genes: Iterable[str] | None = None,
    context: str | None = None,
    inherit: bool = False,
) -> dict[str, dict[str, int]]:
    """Marker sets as ``{term: {gene: weight}}``.

    Parameters
    ----------
    kind
        ``"cell_type"``, ``"tissue"`` or ``"state"``.
    genes
        Keep only these genes (e.g. the genes a dataset measured). Terms left with no
        marker are dropped.
    context
        Keep rows whose context is ``"any"`` or this tissue (e.g. ``"pancreas"``; see
        ``TISSUE_ALIASES``: ``"colon"`` also keeps the ``"intestine"`` rows); ``None`` keeps
        every row.
    inherit
        Add the markers of every ancestor in the marker hierarchy (cell types only); a
        term's own weight wins where a gene appears at several levels.

    Returns
    -------
    One dict per term, gene to ``+1`` / ``-1``.
    """
    if kind not in KINDS:
        msg = f"kind={kind!r} is not one of {KINDS}."
        raise InputDataError(msg)
    df = _read()
    df = df[df["kind"] == kind]
    if context is not None:
        df = df[df["context"].isin(_contexts(context))]
    own = {t: dict(zip(g["gene"], g["weight"])) for t, g in df.groupby("term", sort=True)}
    if inherit and kind == "cell_type":
        parents = marker_parents()
        full = {}
        for term in own:
            chain, p = [], term
            while p:
                if p in own:
                    chain.append(p)
                p = parents.get(p, "")
            merged: dict[str, int] = {}
            for level in reversed(chain):
                merged.update(own[level])
            full[term] = merged
        own = full
    if genes is not None:
        keep = set(genes)
        own = {t: {g: w for g, w in s.items() if g in keep} for t, s in own.items()}
        own = {t: s for t, s in own.items() if s}
    return own
