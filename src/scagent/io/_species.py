"""Human, mouse or both: the species of each gene, and keeping one species of a mixed file.

A file whose genes are a substantial share human and a substantial share mouse comes from a
barnyard or xenograft experiment, or was mapped to a combined human+mouse reference (Cell
Ranger then prefixes features with the genome: ``GRCh38_ACTB``, ``mm10___Actb``). Its cells
are a mix of human cells, mouse cells and doublets. scagent annotates one species at a time:
:func:`~scagent.io.standardize_genes` refuses such a file with a message saying how many genes
and cells are of each species, and :func:`select_species` (``sa.read(..., species=...)``)
keeps one species' genes and cells.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from .._constants import UNS_KEY
from .._errors import InputDataError
from ..knowledge import gene_table

__all__ = [
    "MIN_SPECIES_SHARE",
    "SPECIES",
    "count_cells",
    "gene_species",
    "is_mixed",
    "mixed_species_error",
    "mixed_species_message",
    "select_species",
    "strip_genome_prefix",
]

logger = logging.getLogger("scagent")

SPECIES = ("human", "mouse")
#: Each species needs at least this share of the species-assigned genes for a file to be mixed.
MIXED_GENE_SHARE = 0.1
#: ... and at least this many genes (a handful of look-alike symbols is no mixture).
MIXED_MIN_GENES = 20
#: A cell belongs to a species when at least this share of its counts (in the genes of either
#: species) is in that species' genes; other cells are mixed (doublets or ambient RNA).
MIN_SPECIES_SHARE = 0.9

# genome prefixes of Cell Ranger's multi-genome references, padded with underscores
_PREFIX = re.compile(r"^(GRCh3[78]|hg19|hg38|GRCm3[89]|mm10|mm39|mm9)_+(?=[^_])")
_PREFIX_SPECIES = {"GRCh": "human", "hg": "human", "GRCm": "mouse", "mm": "mouse"}


def strip_genome_prefix(ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Remove genome prefixes such as ``GRCh38_`` or ``mm10___`` from gene ids.

    Parameters
    ----------
    ids
        Gene identifiers as found in a file.

    Returns
    -------
    The ids without prefix, and the species each prefix names (``""`` where there is none).
    """
    out = [str(x) for x in ids]
    species = [""] * len(out)
    for i, x in enumerate(out):
        m = _PREFIX.match(x) if "_" in x else None
        if m is not None:
            out[i] = x[m.end() :]
            genome = m.group(1)
            species[i] = next(s for p, s in _PREFIX_SPECIES.items() if genome.startswith(p))
    return out, species


def gene_species(ids: Sequence[str]) -> np.ndarray:
    """The species of each gene id: ``"human"``, ``"mouse"`` or ``""`` (not recognised).

    A genome prefix (``GRCh38_``, ``mm10_``...) decides where there is one; otherwise human
    (``ENSG``) and mouse (``ENSMUSG``) Ensembl ids, then human and mouse symbols of the gene
    table (human first: symbols are case-sensitive, ``CD3E`` is human and ``Cd3e`` mouse).

    Parameters
    ----------
    ids
        Gene identifiers as found in a file.

    Returns
    -------
    An array of strings, one per id.
    """
    table = gene_table()
    human, mouse = table.symbol_to_ensembl, table.mouse_symbols
    stripped, out = strip_genome_prefix(ids)
    for i, x in enumerate(stripped):
        if out[i]:
            continue
        if x.startswith("ENSG") or x in human:
            out[i] = "human"
        elif x.startswith("ENSMUSG") or x in mouse:
            out[i] = "mouse"
    return np.asarray(out, dtype=str)


def is_mixed(species: np.ndarray) -> bool:
    """Whether both species hold a substantial share of the genes (see the module's notes)."""
    n = [int((species == s).sum()) for s in SPECIES]
    return min(n) >= max(MIXED_MIN_GENES, MIXED_GENE_SHARE * sum(n))


def _human_share(X, species: np.ndarray) -> np.ndarray:
    """Per cell: counts in human genes / counts in human or mouse genes (NaN if none)."""
    X = sp.csr_matrix(X) if not sp.issparse(X) else X.tocsr()
    human = np.asarray(X[:, species == "human"].sum(axis=1)).ravel()
    mouse = np.asarray(X[:, species == "mouse"].sum(axis=1)).ravel()
    total = human + mouse
    return np.divide(human, total, out=np.full_like(total, np.nan, dtype=float), where=total > 0)


def _cell_calls(X, species: np.ndarray) -> dict[str, np.ndarray]:
    share = _human_share(X, species)
    empty = np.isnan(share)
    human = ~empty & (share >= MIN_SPECIES_SHARE)
    mouse = ~empty & (share <= 1 - MIN_SPECIES_SHARE)
    return {"human": human, "mouse": mouse, "mixed": ~empty & ~human & ~mouse}


def count_cells(X, species: np.ndarray) -> dict[str, int]:
    """Cells of each species: ``{"human": n, "mouse": n, "mixed": n}``.

    Parameters
    ----------
    X
        Cells x genes counts (or any non-negative values).
    species
        Species of each gene, from :func:`gene_species`.

    Returns
    -------
    Number of cells called human, mouse and mixed (see :data:`MIN_SPECIES_SHARE`); cells
    with no counts in the genes of either species are in none.
    """
    return {k: int(v.sum()) for k, v in _cell_calls(X, species).items()}


def mixed_species_message(
    n_human: int, n_mouse: int, *, what: str = "the data", cells: dict[str, int] | None = None
) -> str:
    """The error for data that mix human and mouse genes, saying how to keep one species.

    Parameters
    ----------
    n_human, n_mouse
        Genes of each species.
    what
        How to name the data in the message.
    cells
        Cells of each species, from :func:`count_cells`, when known.

    Returns
    -------
    The message.
    """
    msg = (
        f"{what} mixes human and mouse genes ({n_human:,} human, {n_mouse:,} mouse): a "
        "barnyard or xenograft experiment, or reads mapped to a combined human+mouse reference."
    )
    if cells is not None:
        pct = round(MIN_SPECIES_SHARE * 100)
        msg += (
            f" {cells['human']:,} cells have at least {pct}% of their counts in human genes, "
            f"{cells['mouse']:,} in mouse genes, and {cells['mixed']:,} are mixed (likely "
            "doublets of a human and a mouse cell)."
        )
    msg += (
        " scagent annotates one species at a time: read the file with "
        "sa.read(path, species='human') (or 'mouse'; on the command line --species human), "
        "or call sa.io.select_species(adata, 'human') on data in memory, to keep that "
        "species' genes and cells."
    )
    return msg


def mixed_species_error(adata: AnnData, species: np.ndarray, *, what: str) -> InputDataError:
    """:func:`mixed_species_message` for ``adata``, counting its cells when ``X`` is loaded."""
    cells = None
    if adata.n_obs and adata.X is not None and not adata.isbacked:
        cells = count_cells(adata.X, species)
    n_human, n_mouse = (int((species == s).sum()) for s in SPECIES)
    return InputDataError(mixed_species_message(n_human, n_mouse, what=what, cells=cells))


def select_species(
    adata: AnnData, species: str, *, gene_column: str | None = None, copy: bool = False
) -> AnnData | None:
    """Keep the genes of one species, and the cells whose counts come from it.

    Genes of the other species are dropped (genes of neither are kept); a cell is kept when at
    least :data:`MIN_SPECIES_SHARE` of its counts in the genes of either species are in genes
    of ``species`` (cells with no such counts are kept). Run it before
    :func:`~scagent.io.standardize_genes` (``sa.read(..., species=...)`` does).

    Parameters
    ----------
    adata
        Cells x genes data whose ``var_names`` (or ``var[gene_column]``) hold gene ids, with
        counts (or any non-negative values) in ``X``.
    species
        ``"human"`` or ``"mouse"``.
    gene_column
        ``.var`` column holding the gene ids instead of ``var_names``.
    copy
        Return a new object instead of subsetting ``adata`` in place.

    Returns
    -------
    ``None``, or the subset when ``copy=True``. Records ``adata.uns['scagent']['species']``:
    ``kept``, ``n_genes_dropped``, ``n_cells_dropped``, ``n_cells_mixed``, ``min_share``.
    """
    if species not in SPECIES:
        msg = f"species must be one of {SPECIES}, got {species!r}."
        raise InputDataError(msg)
    if gene_column is not None and gene_column not in adata.var.columns:
        msg = (
            f"gene_column={gene_column!r} is not a column of .var; "
            f"available columns: {list(adata.var.columns)}."
        )
        raise InputDataError(msg)
    ids = adata.var_names if gene_column is None else adata.var[gene_column].astype(str)
    of_gene = gene_species(list(ids))
    calls = _cell_calls(adata.X, of_gene)
    other = "mouse" if species == "human" else "human"
    keep_cells = ~calls[other] & ~calls["mixed"]
    keep_genes = of_gene != other
    if not keep_cells.any():
        msg = f"No cell has at least {MIN_SPECIES_SHARE:.0%} of its counts in {species} genes."
        raise InputDataError(msg)
    record = {
        "kept": species,
        "n_genes_dropped": int((~keep_genes).sum()),
        "n_cells_dropped": int((~keep_cells).sum()),
        "n_cells_mixed": int(calls["mixed"].sum()),
        "min_share": MIN_SPECIES_SHARE,
    }
    target = adata[keep_cells, keep_genes].copy() if copy else adata
    if not copy:
        target._inplace_subset_obs(keep_cells)
        target._inplace_subset_var(keep_genes)
    target.uns.setdefault(UNS_KEY, {})["species"] = record
    logger.info(
        "Kept %s: dropped %d genes and %d cells (%d mixed).",
        species,
        record["n_genes_dropped"],
        record["n_cells_dropped"],
        record["n_cells_mixed"],
    )
    return target if copy else None
