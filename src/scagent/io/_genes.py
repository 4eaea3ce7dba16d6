"""Recognise gene identifiers and bring them to current symbols."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from anndata.utils import make_index_unique

from .._constants import UNS_KEY, VAR_ENSEMBL, VAR_INPUT_ID, VAR_RECOGNISED
from .._errors import InputDataError
from .._settings import settings
from ..knowledge import gene_table
from ._species import (
    gene_species,
    is_mixed,
    mixed_species_error,
    mixed_species_message,
    strip_genome_prefix,
)

__all__ = ["detect_gene_ids", "standardize_genes"]

logger = logging.getLogger("scagent")

_SYMBOL_COLUMN = "gene_symbols"  # symbols kept beside Ensembl ids by the 10x readers
_ENSEMBL = re.compile(r"^(ENS(?:MUS)?G\d{11})(?:\.\d+)?(?:_PAR_Y)?$")


def _strip_version(ids: Sequence[str]) -> list[str | None]:
    """Ensembl ids without version (``ENSG...``, ``ENSMUSG...``); ``None`` for other ids."""
    out: list[str | None] = []
    match = _ENSEMBL.match
    for x in ids:
        m = match(x) if str(x).startswith("ENS") else None
        out.append(m.group(1) if m else None)
    return out


def detect_gene_ids(ids: Sequence[str]) -> tuple[str, str, float]:
    """Guess what a list of gene identifiers is.

    Parameters
    ----------
    ids
        Gene identifiers as found in a file.

    Returns
    -------
    ``(id_type, species, fraction_recognised)`` with ``id_type`` ``"ensembl"`` or
    ``"symbol"`` and ``species`` ``"human"`` or ``"mouse"`` (the majority, for a file that
    mixes both). Genome prefixes (``GRCh38_``, ``mm10___``) are ignored.
    """
    ids = strip_genome_prefix(ids)[0]
    if not ids:
        return "symbol", "human", 0.0
    table = gene_table()
    stripped = _strip_version(ids)
    n_human_ens = sum(1 for s in stripped if s is not None and s.startswith("ENSG"))
    n_mouse_ens = sum(1 for s in stripped if s is not None and s.startswith("ENSMUSG"))
    n = len(ids)
    if max(n_human_ens, n_mouse_ens) > 0.5 * n:
        if n_mouse_ens > n_human_ens:
            return "ensembl", "mouse", 0.0  # no mouse Ensembl table is shipped
        hits = sum(1 for s in stripped if s in table.ensembl_to_symbol)
        return "ensembl", "human", hits / n
    n_human = sum(1 for s in ids if s in table.symbol_to_ensembl)
    n_mouse = sum(1 for s in ids if s in table.mouse_symbols and s not in table.symbol_to_ensembl)
    if n_mouse > n_human:
        n_mouse_all = sum(1 for s in ids if s in table.mouse_symbols)
        return "symbol", "mouse", n_mouse_all / n
    return "symbol", "human", n_human / n


def _best_column(adata: AnnData) -> str | None:
    """The ``.var`` column (or ``None`` for var_names) whose entries look most like genes."""
    best, best_frac = None, detect_gene_ids(adata.var_names[:2000])[2]
    for col in adata.var.columns:
        if adata.var[col].dtype.kind not in "OUS" and not isinstance(
            adata.var[col].dtype, pd.CategoricalDtype
        ):
            continue
        frac = detect_gene_ids(adata.var[col].astype(str).to_numpy()[:2000])[2]
        if frac > best_frac + 0.1:
            best, best_frac = col, frac
    return best


def standardize_genes(
    adata: AnnData, *, gene_column: str | None = None, check: bool = True, what: str = "the data"
) -> dict:
    """Recognise gene ids in place and rename genes to current human (or mouse) symbols.

    Parameters
    ----------
    adata
        Object whose ``var_names`` (or ``var[gene_column]``) hold gene ids.
    gene_column
        ``.var`` column holding the ids; by default ``var_names``, or the column that
        looks most like gene ids when ``var_names`` do not.
    check
        Raise :class:`~scagent.InputDataError` when fewer than
        ``sa.settings.min_recognised_genes`` genes are recognised, or when the genes mix
        human and mouse (see :func:`~scagent.io.select_species`).
    what
        How to name the data in messages, e.g. the file name.

    Returns
    -------
    A report, also stored in ``adata.uns['scagent']['genes']``: ``id_type``, ``species``,
    ``source_column``, ``n_genes``, ``n_recognised``, ``n_human`` and ``n_mouse`` (genes of
    each species) and ``mixed_species``. Sets ``adata.var_names`` to symbols (genome prefixes
    such as ``GRCh38_`` removed) and adds ``adata.var['scagent_input_id']``,
    ``adata.var['scagent_recognised']`` and, for human genes, ``adata.var['ensembl_id']``.

    Raises
    ------
    InputDataError
        ``gene_column`` is not a column of ``.var``; with ``check``, too few recognised genes
        or a mix of human and mouse genes.
    """
    if gene_column is not None and gene_column not in adata.var.columns:
        msg = (
            f"gene_column={gene_column!r} is not a column of .var; "
            f"available columns: {list(adata.var.columns)}."
        )
        raise InputDataError(msg)
    if gene_column is None:
        gene_column = _best_column(adata)
    raw_ids = (
        adata.var_names.astype(str).to_numpy()
        if gene_column is None
        else adata.var[gene_column].astype(str).to_numpy()
    )
    of_species = gene_species(raw_ids)
    mixed = is_mixed(of_species)
    if mixed and check:
        raise mixed_species_error(adata, of_species, what=what)
    ids = np.asarray(strip_genome_prefix(raw_ids)[0], dtype=object)
    id_type, species, _ = detect_gene_ids(ids)
    table = gene_table()
    names: list[str] = []
    recognised = np.zeros(len(raw_ids), dtype=bool)
    ensembl: list[str] = []
    if species == "human" and id_type == "ensembl":
        fallback = (
            adata.var[_SYMBOL_COLUMN].astype(str).to_numpy()
            if _SYMBOL_COLUMN in adata.var.columns
            else raw_ids
        )
        for i, (orig, base) in enumerate(zip(fallback, _strip_version(ids))):
            sym = table.ensembl_to_symbol.get(base) if base else None
            recognised[i] = sym is not None
            names.append(sym if sym is not None else orig)
            ensembl.append(base or "")
    elif species == "human":
        for i, orig in enumerate(ids):
            sym = table.to_current_symbol(orig)
            recognised[i] = sym is not None
            names.append(sym if sym is not None else orig)
            ensembl.append(table.symbol_to_ensembl.get(orig, "") if sym else "")
    else:
        names = list(ids)
        recognised[:] = [s in table.mouse_symbols for s in ids]
    adata.var[VAR_INPUT_ID] = raw_ids
    adata.var[VAR_RECOGNISED] = recognised
    if ensembl:
        adata.var[VAR_ENSEMBL] = ensembl
    adata.var_names = make_index_unique(pd.Index(names, dtype=str))
    report = {
        "id_type": id_type,
        "species": species,
        "source_column": gene_column or "var_names",
        "n_genes": len(raw_ids),
        "n_recognised": int(recognised.sum()),
        "n_human": int((of_species == "human").sum()),
        "n_mouse": int((of_species == "mouse").sum()),
        "mixed_species": bool(mixed),
    }
    adata.uns.setdefault(UNS_KEY, {})["genes"] = report
    logger.info(
        "Genes: %d of %d recognised (%s %s ids from %s).",
        report["n_recognised"],
        report["n_genes"],
        species,
        id_type,
        report["source_column"],
    )
    if check:
        check_recognised(report)
    return report


def check_recognised(report: dict) -> None:
    """Raise if a gene report has too few recognised genes or mixes human and mouse."""
    if report.get("mixed_species"):
        raise InputDataError(mixed_species_message(report["n_human"], report["n_mouse"]))
    need = settings.min_recognised_genes
    if report["n_recognised"] >= need:
        return
    if report["species"] == "mouse" and report["id_type"] == "ensembl":
        msg = (
            "The genes are mouse Ensembl ids (ENSMUSG...), which scagent cannot map. "
            "Pass gene_column= naming a .var column with mouse gene symbols."
        )
    else:
        msg = (
            f"Only {report['n_recognised']} of {report['n_genes']} genes in "
            f"{report['source_column']!r} are recognised human or mouse gene symbols or Ensembl "
            f"ids; at least {need} are needed. Check that the genes are the columns (cells x "
            "genes), or pass gene_column= naming the .var column with gene symbols or Ensembl "
            "ids (sa.settings.min_recognised_genes sets the limit)."
        )
    raise InputDataError(msg)
