"""The gene table: Ensembl ids, current symbols, aliases and mouse orthologues.

Built by ``scripts/build_gene_table.py`` from GENCODE v44 (as shipped in the CellTypist
wheel), Ensembl 105 human-mouse orthologues (same wheel) and the symbol/Ensembl pairs of the
real datasets in ``shared/data`` (10x hg19 and GRCh38 annotations).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import pandas as pd

__all__ = ["GeneTable", "gene_table"]


@dataclass(frozen=True)
class GeneTable:
    """Lookup tables for gene identifiers.

    Attributes
    ----------
    ensembl_to_symbol
        Ensembl gene id (no version) to current human symbol.
    symbol_to_ensembl
        Every known human symbol, current or alias, to its Ensembl id.
    current_symbols
        The current human symbols.
    mouse_symbols
        Mouse gene symbols (from the orthologue table).
    mouse_to_human
        Mouse symbol to its human orthologue symbol.
    """

    ensembl_to_symbol: dict[str, str]
    symbol_to_ensembl: dict[str, str]
    current_symbols: frozenset[str]
    mouse_symbols: frozenset[str]
    mouse_to_human: dict[str, str]

    def to_current_symbol(self, symbol: str) -> str | None:
        """The current symbol for a human symbol or alias, or ``None`` if unknown."""
        if symbol in self.current_symbols:
            return symbol
        ens = self.symbol_to_ensembl.get(symbol)
        return None if ens is None else self.ensembl_to_symbol.get(ens)


def _read(name: str) -> pd.DataFrame:
    path = resources.files("scagent.knowledge") / "data" / name
    with resources.as_file(path) as p:
        return pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)


@cache
def gene_table() -> GeneTable:
    """Load (once) the bundled gene table."""
    human = _read("genes_human.tsv.gz")
    primary = human[human["kind"] == "primary"]
    ensembl_to_symbol = dict(zip(primary["ensembl_id"], primary["symbol"]))
    symbol_to_ensembl: dict[str, str] = {}
    # aliases first, so a current symbol always wins over an alias of the same text
    for kind in ("alias", "primary"):
        sub = human[human["kind"] == kind]
        symbol_to_ensembl.update(zip(sub["symbol"], sub["ensembl_id"]))
    orth = _read("orthologs_human_mouse.tsv.gz")
    mouse_to_human = dict(zip(orth["mouse_symbol"], orth["human_symbol"]))
    return GeneTable(
        ensembl_to_symbol=ensembl_to_symbol,
        symbol_to_ensembl=symbol_to_ensembl,
        current_symbols=frozenset(primary["symbol"]),
        mouse_symbols=frozenset(orth["mouse_symbol"]),
        mouse_to_human=mouse_to_human,
    )
