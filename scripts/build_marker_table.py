"""Build the marker table shipped in ``scagent/knowledge/data/markers.tsv``.

One row per (term, gene, source): a long table in the shape of a decoupler network. Rows come
from two kinds of source, and every row names its own:

* The curated marker files of pegasus (``pegasus/annotate_cluster/human_*_cell_markers.json``,
  BSD-3, copied to ``shared/data/knowledge/pegasus_markers``). Their cell-type names are mapped
  to Cell Ontology ids below (``PEGASUS``); the pegasus name and marker-group comment are kept
  in ``note``. Names with no fitting Cell Ontology term are left out and listed by the script,
  and so are a few broadly expressed or stimulus-induced genes (``PEGASUS_EXCLUDE``).
* Markers added here (``CURATED``, ``TISSUES``, ``STATES``), each with the study or database
  cited in ``SOURCES``. They are textbook markers reported by the cited work, written down
  from the literature (the citations were not re-read offline: check them before relying on a
  single row).

Every Cell Ontology id must exist and not be deprecated; ``term_label`` is the ontology's label.
Every gene must be a current human symbol of ``scagent.knowledge.gene_table()`` (aliases are
mapped to the current symbol; unknown symbols are dropped and listed). ``parent`` is the
nearest ancestor (in the Cell Ontology) among the table's own terms, with a few overrides
where the ontology's multiple inheritance would pick a misleading parent.

Run: ``python scripts/build_marker_table.py [--shared ../shared]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from scagent.knowledge import cell_ontology, gene_table

OUT = Path(__file__).resolve().parents[1] / "src" / "scagent" / "knowledge" / "data"
COLUMNS = ["term", "term_label", "kind", "gene", "weight", "context", "parent", "source", "note"]

PEGASUS_LICENCE = "(pegasus 1.x, annotate_cluster, BSD-3)"

SOURCES = {
    "aizarani2019": (
        "Aizarani N et al. (2019) A human liver cell atlas reveals heterogeneity and "
        "epithelial progenitors. Nature 572:199-204. doi:10.1038/s41586-019-1373-2"
    ),
    "baron2016": (
        "Baron M et al. (2016) A single-cell transcriptomic map of the human and mouse "
        "pancreas reveals inter- and intra-cell population structure. Cell Syst 3:346-360. "
        "doi:10.1016/j.cels.2016.08.011"
    ),
    "bennett2016": (
        "Bennett ML et al. (2016) New tools for studying microglia in the mouse and human "
        "CNS. PNAS 113:E1738-E1746. doi:10.1073/pnas.1525528113"
    ),
    "butler2018": (
        "Butler A et al. (2018) Integrating single-cell transcriptomic data across different "
        "conditions, technologies, and species. Nat Biotechnol 36:411-420. "
        "doi:10.1038/nbt.4096 (Seurat PBMC 3k guided clustering tutorial markers)"
    ),
    "cellmarker2": (
        "Hu C et al. (2023) CellMarker 2.0: an updated database of manually curated cell "
        "markers in human/mouse and web tools based on scRNA-seq data. Nucleic Acids Res "
        "51:D870-D876. doi:10.1093/nar/gkac947"
    ),
    "darmanis2015": (
        "Darmanis S et al. (2015) A survey of human brain transcriptome diversity at the "
        "single cell level. PNAS 112:7285-7290. doi:10.1073/pnas.1507125112"
    ),
    "du2016": (
        "Du H, Taylor HS (2016) The role of Hox genes in female reproductive tract "
        "development, adult function, and fertility. Cold Spring Harb Perspect Med 6:a023002."
        " doi:10.1101/cshperspect.a023002"
    ),
    "elmentaite2021": (
        "Elmentaite R et al. (2021) Cells of the human intestinal tract mapped across space "
        "and time. Nature 597:250-255. doi:10.1038/s41586-021-03852-1"
    ),
    "emont2022": (
        "Emont MP et al. (2022) A single-cell atlas of human and mouse white adipose tissue. "
        "Nature 603:926-933. doi:10.1038/s41586-022-04518-2"
    ),
    "garciaalonso2021": (
        "Garcia-Alonso L et al. (2021) Mapping the temporal and spatial dynamics of the human"
        " endometrium in vivo and in vitro. Nat Genet 53:1698-1711. "
        "doi:10.1038/s41588-021-00972-2"
    ),
    "gosselin2017": (
        "Gosselin D et al. (2017) An environment-dependent transcriptional network specifies "
        "human microglia identity. Science 356:eaal3222. doi:10.1126/science.aal3222"
    ),
    "hao2021": (
        "Hao Y et al. (2021) Integrated analysis of multimodal single-cell data. Cell "
        "184:3573-3587. doi:10.1016/j.cell.2021.04.048 (Azimuth PBMC reference markers)"
    ),
    "hay2018": (
        "Hay SB et al. (2018) The Human Cell Atlas bone marrow single-cell interactive web "
        "portal. Exp Hematol 68:51-61. doi:10.1016/j.exphem.2018.09.004"
    ),
    "kumar2017": (
        "Kumar BV et al. (2017) Human tissue-resident memory T cells are defined by core "
        "transcriptional and functional signatures. Cell Rep 20:2921-2934. "
        "doi:10.1016/j.celrep.2017.08.078"
    ),
    "lake2023": (
        "Lake BB et al. (2023) An atlas of healthy and injured cell states and niches in the "
        "human kidney. Nature 619:585-594. doi:10.1038/s41586-023-05769-3"
    ),
    "litvinukova2020": (
        "Litvinukova M et al. (2020) Cells of the adult human heart. Nature 588:466-472. "
        "doi:10.1038/s41586-020-2797-4"
    ),
    "macparland2018": (
        "MacParland SA et al. (2018) Single cell RNA sequencing of human liver reveals "
        "distinct intrahepatic macrophage populations. Nat Commun 9:4383. "
        "doi:10.1038/s41467-018-06318-7"
    ),
    "muraro2016": (
        "Muraro MJ et al. (2016) A single-cell transcriptome atlas of the human pancreas. "
        "Cell Syst 3:385-394. doi:10.1016/j.cels.2016.09.002"
    ),
    "panglaodb": (
        "Franzen O, Gan LM, Bjorkegren JLM (2019) PanglaoDB: a web server for exploration of "
        "mouse and human single-cell RNA sequencing data. Database 2019:baz046. "
        "doi:10.1093/database/baz046"
    ),
    "reynolds2021": (
        "Reynolds G et al. (2021) Developmental cell programs are co-opted in inflammatory "
        "skin disease. Science 371:eaba6500. doi:10.1126/science.aba6500"
    ),
    "segerstolpe2016": (
        "Segerstolpe A et al. (2016) Single-cell transcriptome profiling of human pancreatic "
        "islets in health and type 2 diabetes. Cell Metab 24:593-607. "
        "doi:10.1016/j.cmet.2016.08.020"
    ),
    "smillie2019": (
        "Smillie CS et al. (2019) Intra- and inter-cellular rewiring of the human colon "
        "during ulcerative colitis. Cell 178:714-730. doi:10.1016/j.cell.2019.06.029"
    ),
    "tabulasapiens2022": (
        "The Tabula Sapiens Consortium (2022) The Tabula Sapiens: a multiple-organ, "
        "single-cell transcriptomic atlas of humans. Science 376:eabl4896. "
        "doi:10.1126/science.abl4896"
    ),
    "tirosh2016mel": (
        "Tirosh I et al. (2016) Dissecting the multicellular ecosystem of metastatic melanoma"
        " by single-cell RNA-seq. Science 352:189-196. doi:10.1126/science.aad0501"
    ),
    "travaglini2020": (
        "Travaglini KJ et al. (2020) A molecular cell atlas of the human lung from "
        "single-cell RNA sequencing. Nature 587:619-625. doi:10.1038/s41586-020-2922-4"
    ),
    "uhlen2015": (
        "Uhlen M et al. (2015) Tissue-based map of the human proteome. Science 347:1260419. "
        "doi:10.1126/science.1260419 (Human Protein Atlas tissue-enriched genes)"
    ),
    "villani2017": (
        "Villani AC et al. (2017) Single-cell RNA-seq reveals new types of human blood "
        "dendritic cells, monocytes, and progenitors. Science 356:eaah4573. "
        "doi:10.1126/science.aah4573"
    ),
    "zhang2016": (
        "Zhang Y et al. (2016) Purification and characterization of progenitor and mature "
        "human astrocytes reveals transcriptional and functional differences with mouse. "
        "Neuron 89:37-53. doi:10.1016/j.neuron.2015.11.013"
    ),
    "zheng2017": (
        "Zheng GXY et al. (2017) Massively parallel digital transcriptional profiling of "
        "single cells. Nat Commun 8:14049. doi:10.1038/ncomms14049"
    ),
    "zheng2021": (
        "Zheng L et al. (2021) Pan-cancer single-cell landscape of tumor-infiltrating T "
        "cells. Science 374:abe6474. doi:10.1126/science.abe6474"
    ),
}

# pegasus cell-type name -> (Cell Ontology id or None to leave out, context)
PEGASUS = {
    "immune": {
        "T cell": ("CL:0000084", "any"),
        "CD4 Naive T cell": ("CL:0000895", "any"),
        "CD4 TCM": ("CL:0000904", "any"),
        "CD4 TEM": ("CL:0000905", "any"),
        "T regulatory cell": ("CL:0000815", "any"),
        "CD4 CTL": ("CL:0000934", "any"),
        "T follicular helper cell": ("CL:0002038", "any"),
        "CD8 Naive T cell": ("CL:0000900", "any"),
        "CD8 TCM": ("CL:0000907", "any"),
        "CD8 TEM": ("CL:0000913", "any"),
        "MAIT": ("CL:0000940", "any"),
        "Gamma-delta T cell": ("CL:0000798", "any"),
        "Natural killer cell": ("CL:0000623", "any"),
        "CD56-dim NK cell": ("CL:0000939", "any"),
        "CD56-bright NK cell": ("CL:0000938", "any"),
        "B cell": ("CL:0000236", "any"),
        "Pro B cell": ("CL:0000826", "bone_marrow"),
        "Pre B cell": ("CL:0000817", "bone_marrow"),
        "Naive B cell": ("CL:0000788", "any"),
        "Memory B cell": ("CL:0000787", "any"),
        "Germinal Center B cell": ("CL:0000844", "lymphoid_tissue"),
        "Dark zone B cell": ("CL:0009112", "lymphoid_tissue"),
        "Light zone B cell": ("CL:0009111", "lymphoid_tissue"),
        "Plasma cell": ("CL:0000786", "any"),
        "CD14+ Monocyte": ("CL:0001054", "any"),
        "CD16+ Monocyte": ("CL:0002396", "any"),
        "CD1C+ dendritic cell": ("CL:0002399", "any"),
        "CLEC9A+ dendritic cell": ("CL:0002394", "any"),
        "Migratory dendritic cell": ("CL:4047054", "any"),
        "Plasmacytoid dendritic cell": ("CL:0000784", "any"),
        "Follicular dendritic cell": ("CL:0000442", "lymphoid_tissue"),
        "Hematopoietic stem cell": ("CL:0000037", "bone_marrow"),
        "Erythroid cell": ("CL:0000764", "any"),
        "Platelet": ("CL:0000233", "any"),
        "Pro-Neutrophil": ("CL:0000564", "bone_marrow"),
        "Pre-Neutrophil": ("CL:0000580", "bone_marrow"),
        "Neutrophil": ("CL:0000775", "any"),
        "Basophil": ("CL:0000767", "any"),
        "Macrophage": ("CL:0000235", "any"),
        "M1 macrophage": ("CL:0000863", "any"),
        "M2 macrophage": ("CL:0000890", "any"),
        "Mast cell": ("CL:0000097", "any"),
    },
    "brain": {
        "Glutamatergic neuron": ("CL:0000679", "brain"),
        "GABAergic neuron": ("CL:0000617", "brain"),
        "GABAergic SST interneuron": ("CL:4023017", "brain"),
        "GABAergic PVALB interneuron": ("CL:4023018", "brain"),
        "GABAergic VIP interneuron": ("CL:4023016", "brain"),
        "Astrocyte": ("CL:0000127", "brain"),
        "Oligodendrocyte": ("CL:0000128", "brain"),
        "OPC": ("CL:0002453", "brain"),
        "Endothelial": ("CL:0000115", "brain"),
        "Mural": ("CL:0008034", "brain"),
        "Microglia": ("CL:0000129", "brain"),
    },
    "lung": {
        "Alveolar type I cell": ("CL:0002062", "lung"),
        "Alveolar type II cell": ("CL:0002063", "lung"),
        "Basal cell": ("CL:0002633", "lung"),
        "Club cell": ("CL:0000158", "lung"),
        "Ciliated cell": ("CL:0005012", "lung"),
        "Goblet cell": ("CL:0002370", "lung"),
        "Ionocyte": ("CL:0005006", "lung"),
        "Plumonary neuroendocrine cell": ("CL:1000223", "lung"),
        "Submucosal gland serous cell": ("CL:4033005", "lung"),
        "Epithelial cell": ("CL:0000066", "lung"),
        "Vascular endothelial cell": ("CL:0002139", "lung"),
        "EC artery": ("CL:1000413", "lung"),
        "EC vein": ("CL:0002543", "lung"),
        "EC bronchial vessel": (None, "lung"),  # systemic bronchial venous EC: no CL term
        "Aerocyte": ("CL:4028003", "lung"),
        "EC general capillary": ("CL:4028002", "lung"),
        "Lymphatic endothelial cell": ("CL:0002138", "lung"),
        "Smooth muscle cell": ("CL:0000192", "lung"),
        "Airway smooth muscle cell": ("CL:0019019", "lung"),
        "Pericyte": ("CL:0000669", "lung"),
        "Mesothelial cell": ("CL:0000077", "lung"),
        "Fibroblast": ("CL:0000057", "lung"),
        "Adventitial fibroblast": ("CL:4052030", "lung"),
        "Alveolar fibroblast": ("CL:0002241", "lung"),
        "Lipofibroblast": ("CL:4028004", "lung"),
        "Myofibroblast": ("CL:0000186", "lung"),
        "Fibromyocyte": (None, "lung"),  # no CL term
    },
}

# pegasus markers left out: genes expressed broadly or induced by stimulation, which made the
# set win in unrelated cells (checked on the shared PBMC and pancreas data). (name, gene): reason
PEGASUS_EXCLUDE = {
    ("Platelet", "CXCR4"): "chemokine receptor high in lymphocytes",
    ("Platelet", "SLAMF1"): "expressed by activated lymphocytes",
    ("CD16+ Monocyte", "IFITM2"): "interferon-induced, broadly expressed",
    ("CD16+ Monocyte", "IFITM3"): "interferon-induced, broadly expressed",
    ("CD16+ Monocyte", "ASAH1"): "lysosomal enzyme of all myeloid cells",
    ("Mast cell", "RGS1"): "induced in activated lymphocytes",
    ("Mast cell", "RGS2"): "immediate-early gene of many cells",
    ("Mast cell", "SAMSN1"): "broadly expressed in leukocytes",
    ("Microglia", "CD74"): "MHC-II chaperone of all antigen-presenting cells",
    ("Microglia", "DOCK8"): "broadly expressed in leukocytes",
    ("Macrophage", "CTSB"): "lysosomal protease of most cells",
    ("M1 macrophage", "CXCL10"): "interferon-induced in many cells",
    ("CD4 TCM", "SOCS3"): "cytokine-induced immediate-early gene",
    ("CD4 TEM", "ANXA2"): "broadly expressed",
    ("CD4 TEM", "LGALS1"): "broadly expressed",
    ("CD4 TEM", "AHNAK"): "broadly expressed",
    ("CD4 TEM", "YWHAH"): "broadly expressed",
    ("CD4 TEM", "CD63"): "broadly expressed",
    ("Memory B cell", "LGALS1"): "broadly expressed",
    ("Memory B cell", "CRIP1"): "broadly expressed",
    ("MAIT", "LST1"): "monocyte gene",
    ("Hematopoietic stem cell", "CD59"): "broadly expressed",
    ("Hematopoietic stem cell", "SOX4"): "broadly expressed",
    ("Erythroid cell", "ITGA4"): "pan-leukocyte integrin",
    ("Erythroid cell", "TFRC"): "proliferating and activated cells",
    ("Migratory dendritic cell", "BIRC3"): "NF-kB target of activated lymphocytes",
    ("Migratory dendritic cell", "CD40"): "activated B cells",
    ("Light zone B cell", "CD83"): "activation marker of B cells and DCs",
    ("Vascular endothelial cell", "IFI27"): "interferon-induced",
}

# (term, context, source key, "GENE GENE -NEGATIVE_GENE", note)
CURATED: list[tuple[str, str, str, str, str]] = [
    # --- immune, lymphoid -------------------------------------------------------------
    ("CL:0000084", "any", "panglaodb", "CD2 CD3D CD3E CD3G CD247 TRBC2", "pan-T"),
    ("CL:0000624", "any", "hao2021", "CD4 IL7R MAL", "CD4 T (Azimuth l1)"),
    ("CL:0000624", "any", "hao2021", "-CD8A -CD8B", "CD4 T lack CD8 (exclusive lineages)"),
    ("CL:0000625", "any", "hao2021", "CD8A CD8B", "CD8 T (Azimuth l1)"),
    ("CL:0000625", "any", "hao2021", "-CD4", "CD8 T lack CD4 (exclusive lineages)"),
    ("CL:0000895", "any", "butler2018", "CCR7 IL7R", "Naive CD4 T (Seurat PBMC3k)"),
    ("CL:0000895", "any", "hao2021", "LEF1 TCF7", "CD4 naive (Azimuth l2)"),
    ("CL:0000897", "any", "butler2018", "S100A4 IL7R", "Memory CD4 T (Seurat PBMC3k)"),
    ("CL:0000897", "any", "hao2021", "ITGB1 AQP3", "CD4 TCM/TEM (Azimuth l2)"),
    ("CL:0000897", "any", "kumar2017", "CD69 ITGAE CXCR6 ITGA1", "tissue-resident memory core"),
    ("CL:0000909", "any", "kumar2017", "CD69 ITGAE CXCR6 ITGA1", "tissue-resident memory core"),
    ("CL:0000909", "any", "zheng2021", "GZMK ZNF683", "CD8 memory (GZMK+ Tem, ZNF683+ Trm)"),
    ("CL:0000913", "any", "zheng2021", "GZMK", "CD8.c05 Tem GZMK+"),
    ("CL:0001050", "any", "zheng2021", "GZMB GZMH PRF1 NKG7 CX3CR1 FGFBP2 KLRG1", "CD8 Temra/Teff"),
    ("CL:0000815", "any", "zheng2021", "FOXP3 IL2RA CTLA4 TNFRSF18 TNFRSF4", "CD4 Treg"),
    ("CL:0000896", "any", "cellmarker2", "CD69 IL2RA TNFRSF4 TNFRSF9 ICOS", "T-cell activation"),
    ("CL:0000906", "any", "cellmarker2", "CD69 IL2RA TNFRSF9 ICOS", "T-cell activation"),
    ("CL:4033069", "any", "tirosh2016mel", "MKI67 TOP2A TYMS", "cycling T: cell-cycle genes"),
    ("CL:4033074", "any", "tirosh2016mel", "MKI67 TOP2A TYMS", "cycling CD8 T: cell-cycle genes"),
    ("CL:4033075", "any", "tirosh2016mel", "MKI67 TOP2A TYMS", "cycling CD4 T: cell-cycle genes"),
    ("CL:0000623", "any", "butler2018", "GNLY NKG7", "NK (Seurat PBMC3k)"),
    ("CL:0000623", "any", "hao2021", "KLRF1 PRF1 NCAM1", "NK (Azimuth l1/l2)"),
    ("CL:0000236", "any", "butler2018", "MS4A1", "B (Seurat PBMC3k)"),
    ("CL:0000236", "any", "zheng2017", "CD79A CD79B CD19", "B cells"),
    ("CL:0000786", "any", "hao2021", "MZB1 TXNDC5 DERL3 TNFRSF17", "plasmablast (Azimuth)"),
    ("CL:0000786", "any", "panglaodb", "JCHAIN XBP1", "plasma cell"),
    # --- immune, myeloid ---------------------------------------------------------------
    ("CL:0000576", "any", "hao2021", "FCN1 LYZ S100A9 AIF1 LST1", "monocyte"),
    (
        "CL:0000576",
        "any",
        "villani2017",
        "-CD1C -FCER1A -CLEC10A",
        "DC2 genes absent from monocytes",
    ),
    ("CL:0001054", "any", "butler2018", "CD14 LYZ", "CD14+ Mono (Seurat PBMC3k)"),
    ("CL:0001054", "any", "zheng2017", "S100A8 S100A9", "CD14+ monocytes"),
    ("CL:0002396", "any", "butler2018", "FCGR3A MS4A7", "FCGR3A+ Mono (Seurat PBMC3k)"),
    ("CL:0002396", "any", "hao2021", "CDKN1C LST1 RHOC HES4", "CD16 Mono (Azimuth)"),
    ("CL:0000451", "any", "butler2018", "FCER1A CST3", "DC (Seurat PBMC3k)"),
    ("CL:0002399", "any", "villani2017", "CD1C FCER1A CLEC10A", "DC2 (CD1C+)"),
    ("CL:0002394", "any", "villani2017", "CLEC9A XCR1 CADM1", "DC1 (CLEC9A+)"),
    ("CL:0000784", "any", "villani2017", "LILRA4 CLEC4C IL3RA GZMB", "DC6 / pDC"),
    ("CL:0000784", "any", "hao2021", "PLD4 ITM2C", "pDC (Azimuth)"),
    ("CL:0000235", "any", "panglaodb", "C1QA C1QB C1QC CD68 CD163", "macrophage"),
    ("CL:0000129", "brain", "bennett2016", "TMEM119 P2RY12", "homeostatic microglia"),
    ("CL:0000129", "brain", "gosselin2017", "P2RY12 CX3CR1 TMEM119", "human microglia signature"),
    ("CL:0000097", "any", "panglaodb", "TPSAB1 TPSB2 CPA3 KIT MS4A2 HPGDS", "mast cell"),
    ("CL:0000775", "any", "panglaodb", "FCGR3B CXCR2 CSF3R CMTM2", "neutrophil"),
    ("CL:0000767", "any", "panglaodb", "HDC MS4A2 CPA3 GATA2 CLC", "basophil"),
    ("CL:0000771", "any", "panglaodb", "CLC PRG2 EPX IL5RA CCR3 SIGLEC8", "eosinophil"),
    ("CL:0000233", "any", "butler2018", "PPBP", "Platelet (Seurat PBMC3k)"),
    ("CL:0000233", "any", "hao2021", "PF4 GNG11 TUBB1 CLU", "platelet (Azimuth)"),
    ("CL:0000556", "bone_marrow", "hay2018", "PF4 PPBP ITGA2B GP9 GP1BA", "megakaryocyte"),
    ("CL:0000232", "any", "hay2018", "HBB HBA1 HBA2 ALAS2 CA1 SLC4A1", "erythrocyte"),
    ("CL:0000037", "bone_marrow", "hay2018", "CD34", "HSPC"),
    # --- stromal, vascular ---------------------------------------------------------------
    ("CL:0000115", "any", "tirosh2016mel", "PECAM1 VWF CDH5", "endothelial"),
    ("CL:0000115", "any", "panglaodb", "CLDN5 KDR ESAM EGFL7 PLVAP", "endothelial"),
    ("CL:0002138", "any", "panglaodb", "PROX1 LYVE1 CCL21 PDPN TFF3", "lymphatic endothelial"),
    ("CL:0000057", "any", "panglaodb", "DCN LUM COL1A1 COL1A2 COL3A1 PDGFRA FBLN1", "fibroblast"),
    ("CL:0000192", "any", "panglaodb", "ACTA2 MYH11 CNN1 DES TAGLN ACTG2", "smooth muscle"),
    ("CL:0000669", "any", "panglaodb", "RGS5 PDGFRB KCNJ8 ABCC9 NOTCH3", "pericyte"),
    ("CL:0000077", "any", "panglaodb", "MSLN UPK3B WT1 CALB2", "mesothelial"),
    ("CL:0000136", "adipose", "emont2022", "ADIPOQ PLIN1 LEP LIPE PPARG CIDEC", "adipocyte"),
    # --- epithelial, generic -------------------------------------------------------------
    ("CL:0000066", "any", "panglaodb", "EPCAM KRT8 KRT18 KRT19 CDH1 CLDN4 CLDN7", "epithelial"),
    ("CL:0005012", "any", "travaglini2020", "FOXJ1 TPPP3 CAPS PIFO RSPH1 DNAH5", "ciliated"),
    # --- pancreas --------------------------------------------------------------------------
    ("CL:0008024", "pancreas", "segerstolpe2016", "CHGA CHGB SCG2 SCG5 PCSK1N", "islet endocrine"),
    ("CL:0000171", "pancreas", "baron2016", "GCG", "alpha"),
    ("CL:0000171", "pancreas", "muraro2016", "ARX IRX2 TTR TM4SF4 GC", "alpha"),
    ("CL:0000169", "pancreas", "baron2016", "INS", "beta"),
    ("CL:0000169", "pancreas", "muraro2016", "IAPP MAFA DLK1 ADCYAP1 NPTX2", "beta"),
    ("CL:0000169", "pancreas", "panglaodb", "NKX6-1", "beta-cell transcription factor"),
    ("CL:0000173", "pancreas", "baron2016", "SST", "delta"),
    ("CL:0000173", "pancreas", "segerstolpe2016", "HHEX LEPR RBP4", "delta"),
    ("CL:0002275", "pancreas", "baron2016", "PPY", "gamma / PP"),
    ("CL:0005019", "pancreas", "baron2016", "GHRL", "epsilon"),
    ("CL:0002064", "pancreas", "baron2016", "PRSS1 CPA1 CELA3A CTRB1", "acinar"),
    ("CL:0002064", "pancreas", "segerstolpe2016", "CPB1 PNLIP CTRC REG1A CELA2A", "acinar"),
    ("CL:0002079", "pancreas", "baron2016", "KRT19", "ductal"),
    ("CL:0002079", "pancreas", "segerstolpe2016", "SOX9 CFTR MMP7 SPP1 KRT7", "ductal"),
    (
        "CL:0002410",
        "pancreas",
        "baron2016",
        "PDGFRB RGS5 PDGFRA COL1A1 SPARC",
        "stellate (quiescent RGS5+, activated PDGFRA+/COL1A1+)",
    ),
    ("CL:0002573", "any", "panglaodb", "SOX10 S100B MPZ PLP1 NGFR CDH19", "Schwann"),
    # --- lung --------------------------------------------------------------------------------
    ("CL:0002063", "lung", "travaglini2020", "SFTPC SFTPB SFTPA1 NAPSA LAMP3 ABCA3", "AT2"),
    ("CL:0002062", "lung", "travaglini2020", "AGER EMP2 HOPX RTKN2", "AT1"),
    ("CL:0000158", "lung", "travaglini2020", "SCGB1A1 SCGB3A1 SCGB3A2", "club"),
    ("CL:0002633", "lung", "travaglini2020", "KRT5 TP63 KRT15", "basal"),
    ("CL:0000583", "lung", "travaglini2020", "MARCO FABP4 INHBA MCEMP1", "alveolar macrophage"),
    # --- skin ------------------------------------------------------------------------------------
    ("CL:0000312", "skin", "reynolds2021", "KRT5 KRT14 KRT1 KRT10 KRTDAP DMKN SFN", "keratinocyte"),
    ("CL:0000148", "skin", "tirosh2016mel", "PMEL MLANA TYRP1 DCT TYR MITF", "melanocyte"),
    # --- liver -
    (
        "CL:0000182",
        "liver",
        "macparland2018",
        "ALB APOA1 APOC3 TF SERPINA1 HP CYP3A4 AHSG",
        "hepatocyte",
    ),
    ("CL:1000488", "liver", "aizarani2019", "KRT19 KRT7 SOX9 ANXA4 SPP1", "cholangiocyte"),
    ("CL:0000091", "liver", "macparland2018", "CD5L MARCO VSIG4 CD163", "Kupffer"),
    ("CL:1000398", "liver", "aizarani2019", "CLEC4G CLEC4M FCN2 FCN3 STAB2", "LSEC"),
    # --- intestine -
    (
        "CL:0000584",
        "intestine",
        "elmentaite2021",
        "APOA4 FABP2 RBP2 ALPI APOB",
        "small-intestine enterocyte",
    ),
    (
        "CL:1000347",
        "intestine",
        "smillie2019",
        "CA1 CA2 SLC26A3 AQP8 CEACAM7 GUCA2A GUCA2B",
        "colonocyte",
    ),
    ("CL:0019031", "intestine", "smillie2019", "MUC2 TFF3 SPINK4 CLCA1 ZG16 FCGBP", "goblet"),
    ("CL:0000510", "intestine", "elmentaite2021", "DEFA5 DEFA6 REG3A ITLN2", "Paneth"),
    ("CL:0002204", "any", "smillie2019", "POU2F3 TRPM5 SH2D6 IRAG2 AVIL", "tuft"),
    ("CL:0000164", "intestine", "smillie2019", "CHGA CHGB PYY NEUROD1", "enteroendocrine"),
    ("CL:0002250", "intestine", "smillie2019", "LGR5 OLFM4 ASCL2 SMOC2", "crypt stem"),
    # --- kidney -
    ("CL:0000653", "kidney", "lake2023", "NPHS1 NPHS2 PODXL PTPRO CLIC5", "podocyte"),
    ("CL:0002306", "kidney", "lake2023", "LRP2 CUBN SLC34A1 SLC5A12", "proximal tubule"),
    ("CL:1001106", "kidney", "lake2023", "UMOD SLC12A1 CASR", "thick ascending limb"),
    ("CL:1000849", "kidney", "lake2023", "SLC12A3 CALB1 PVALB", "distal convoluted tubule"),
    ("CL:1001431", "kidney", "lake2023", "AQP2 AQP3 SCNN1G GATA3", "principal cell"),
    (
        "CL:1001432",
        "kidney",
        "lake2023",
        "ATP6V1G3 ATP6V0D2 FOXI1 SLC4A1 SLC26A4",
        "intercalated cell",
    ),
    # --- heart, endometrium -
    (
        "CL:0000746",
        "heart",
        "litvinukova2020",
        "TNNT2 MYH7 MYH6 ACTC1 MYL2 TTN RYR2 NPPA",
        "cardiomyocyte",
    ),
    ("CL:0002255", "endometrium", "du2016", "HOXA10 HOXA11", "endometrial stroma HOX code"),
    ("CL:0002255", "endometrium", "cellmarker2", "MME PGR", "endometrial stroma (CD10, PR)"),
    # --- nervous system -
    ("CL:0000540", "brain", "darmanis2015", "SNAP25 SYT1 RBFOX3 STMN2", "neuron"),
    ("CL:0000127", "brain", "zhang2016", "GFAP AQP4 ALDH1L1 SLC1A3 SLC1A2 GJA1", "astrocyte"),
    ("CL:0000128", "brain", "darmanis2015", "MBP PLP1 MOG MOBP MAG", "oligodendrocyte"),
    ("CL:0002453", "brain", "darmanis2015", "PDGFRA CSPG4 OLIG1 OLIG2", "OPC"),
]

STATES: list[tuple[str, str, str, str, str]] = [
    (
        "state:cycling",
        "any",
        "tirosh2016mel",
        "MKI67 TOP2A CENPF NUSAP1 TPX2 UBE2C BIRC5 CDK1 CCNB2 HMGB2 CDC20 AURKB SMC4 "
        "PCNA MCM2 MCM5 TYMS RRM2 FEN1 GINS2 UHRF1 CLSPN",
        "cycling (G1/S and G2/M genes of the Tirosh 2016 cell-cycle lists)",
    ),
]

TISSUES: list[tuple[str, str, str, str, str]] = [
    (
        "tissue:blood",
        "blood",
        "zheng2017",
        "PTPRC HBB HBA1 HBA2 PPBP PF4 S100A8 S100A9 LYZ CD3E MS4A1 NKG7 FCN1 GNLY",
        "peripheral blood",
    ),
    (
        "tissue:bone_marrow",
        "bone_marrow",
        "hay2018",
        "CD34 MPO ELANE AZU1 PRTN3 CTSG LTF CAMP AHSP HBD GYPA CA1 ALAS2",
        "bone marrow",
    ),
    (
        "tissue:pancreas",
        "pancreas",
        "uhlen2015",
        "PRSS1 CPA1 CELA3A CTRB1 PNLIP CPB1 CELA2A PLA2G1B INS GCG SST PPY SPINK1 REG1A",
        "pancreas",
    ),
    (
        "tissue:brain",
        "brain",
        "uhlen2015",
        "GFAP SNAP25 SYT1 PLP1 MBP MOBP OLIG2 AQP4 GAD1 SLC17A7 STMN2 RBFOX3",
        "brain",
    ),
    (
        "tissue:lung",
        "lung",
        "travaglini2020",
        "SFTPC SFTPB SFTPA1 SFTPA2 NAPSA AGER SCGB1A1 SCGB3A2 LAMP3 EMP2",
        "lung",
    ),
    (
        "tissue:kidney",
        "kidney",
        "lake2023",
        "UMOD SLC34A1 LRP2 CUBN NPHS1 NPHS2 PODXL SLC12A1 SLC12A3 AQP2 PAX8 PAX2",
        "kidney",
    ),
    (
        "tissue:colon",
        "colon",
        "smillie2019",
        "CDX1 CDX2 LGALS4 CDH17 VIL1 MUC2 CA1 SLC26A3 FABP1 CEACAM5 KRT20 TFF3",
        "colon / intestine",
    ),
    (
        "tissue:endometrium",
        "endometrium",
        "garciaalonso2021",
        "HOXA10 HOXA11 PGR ESR1 PAEP MME PAX8 MMP26 SCGB2A1",
        "endometrium / uterus",
    ),
    (
        "tissue:liver",
        "liver",
        "macparland2018",
        "ALB APOA1 APOA2 APOC3 APOH TF SERPINA1 HP FGB FGA CYP3A4 AHSG",
        "liver",
    ),
    (
        "tissue:skin",
        "skin",
        "reynolds2021",
        "KRT1 KRT10 KRT14 KRT5 LORICRIN FLG DSG1 KRT2 DMKN KRTDAP PMEL MLANA",
        "skin",
    ),
    (
        "tissue:heart",
        "heart",
        "litvinukova2020",
        "MYH6 MYH7 TNNT2 NPPA NPPB MYL7 MYL4 TTN RYR2 ACTC1 MYL2",
        "heart",
    ),
]

# the marker-hierarchy parent where the nearest table ancestor is misleading (multiple inheritance)
PARENT_OVERRIDES = {
    "CL:0002394": "CL:0000451",  # cDC1: CL also lists pDC as a parent
    "CL:0002396": "CL:0000576",  # CD16 monocyte: CL lists CD14-positive monocyte as a parent
}


def _pegasus_rows(shared: Path) -> tuple[list[dict], list[str]]:
    rows: list[dict] = []
    skipped: list[str] = []
    excluded: list[str] = []
    folder = shared / "data" / "knowledge" / "pegasus_markers"
    for group, mapping in PEGASUS.items():
        fname = f"human_{group}_cell_markers.json"
        with open(folder / fname) as fh:
            doc = json.load(fh)
        stack = list(doc["cell_types"])
        while stack:
            ct = stack.pop(0)
            stack.extend(ct.get("subtypes", {}).get("cell_types", []))
            term, context = mapping[ct["name"]]
            if term is None:
                skipped.append(f"{fname}: {ct['name']} (no Cell Ontology term)")
                continue
            for block in ct["markers"]:
                comment = block.get("comment", block.get("comments", ""))
                for g in block["genes"]:
                    if (ct["name"], g[:-1]) in PEGASUS_EXCLUDE:
                        excluded.append(f"{ct['name']}: {g[:-1]}")
                        continue
                    rows.append(
                        {
                            "term": term,
                            "gene": g[:-1],
                            "weight": 1 if g.endswith("+") else -1,
                            "context": context,
                            "source": f"pegasus {fname} {PEGASUS_LICENCE}",
                            "note": f"pegasus: {ct['name']}; group weight {block['weight']}"
                            + (f"; {comment}" if comment else ""),
                        }
                    )
    unused = set(PEGASUS_EXCLUDE) - {tuple(e.split(": ")) for e in excluded}
    if unused:
        raise SystemExit(f"PEGASUS_EXCLUDE entries not found: {sorted(unused)}")
    print(f"pegasus markers left out ({len(excluded)}): {excluded}")
    return rows, skipped


def _curated_rows() -> list[dict]:
    rows = []
    for term, context, key, genes, note in CURATED + STATES + TISSUES:
        for g in genes.split():
            rows.append(
                {
                    "term": term,
                    "gene": g.lstrip("-"),
                    "weight": -1 if g.startswith("-") else 1,
                    "context": context,
                    "source": SOURCES[key],
                    "note": note,
                }
            )
    return rows


def _kind(term: str) -> str:
    if term.startswith("tissue:"):
        return "tissue"
    if term.startswith("state:"):
        return "state"
    return "cell_type"


def _label(term: str, co) -> str:
    if term.startswith(("tissue:", "state:")):
        return term.split(":", 1)[1].replace("_", " ")
    return co.label(term)


def _parents(terms: list[str], co) -> dict[str, str]:
    cell_terms = set(terms)
    parents = {}
    for t in terms:
        if t in PARENT_OVERRIDES:
            parents[t] = PARENT_OVERRIDES[t]
            continue
        anc = [(d, a) for a, d in co.ancestors(t).items() if a in cell_terms and a != t]
        if not anc:
            parents[t] = ""
            continue
        best = min(d for d, _ in anc)
        # among equally near ancestors prefer the most specific (most ancestors itself)
        near = sorted((-len(co.ancestors(a)), a) for d, a in anc if d == best)
        parents[t] = near[0][1]
    return parents


def build(shared: Path) -> pd.DataFrame:
    """Assemble, check and return the marker table."""
    co = cell_ontology()
    genes = gene_table()
    peg, skipped = _pegasus_rows(shared)
    df = pd.DataFrame(peg + _curated_rows())
    problems: list[str] = []
    for t in df["term"].unique():
        if _kind(t) != "cell_type":
            continue
        if t not in co:
            problems.append(f"{t}: not a Cell Ontology id")
        elif co.terms[t].get("deprecated"):
            problems.append(f"{t}: deprecated")
    for t, p in PARENT_OVERRIDES.items():
        if not co.is_a(t, p):
            problems.append(f"override {t} -> {p}: not an ontology ancestor")
    if problems:
        raise SystemExit("\n".join(problems))
    current = df["gene"].map(genes.to_current_symbol)
    renamed = df.loc[current.notna() & (current != df["gene"]), "gene"]
    dropped = sorted(set(df.loc[current.isna(), "gene"]))
    df["note"] = df["note"].where(
        current.isna() | (current == df["gene"]), df["note"] + "; listed as " + df["gene"]
    )
    df["gene"] = current
    df = df[df["gene"].notna()].copy()
    df["kind"] = df["term"].map(_kind)
    df["term_label"] = df["term"].map(lambda t: _label(t, co))
    cell = sorted(df.loc[df["kind"] == "cell_type", "term"].unique())
    parents = _parents(cell, co)
    df["parent"] = df["term"].map(parents).fillna("")
    # one row per (term, gene, source); a gene may not be both positive and negative for a term
    df = df.drop_duplicates(["term", "gene", "source", "weight"])
    signs = df.groupby(["term", "gene"])["weight"].nunique()
    clash = signs[signs > 1]
    if len(clash):
        raise SystemExit(f"Conflicting signs: {list(clash.index)}")
    df = df.sort_values(
        ["kind", "term", "weight", "source", "gene"], ascending=[True] * 2 + [False, True, True]
    )
    print(f"renamed (alias -> current): {sorted(set(renamed))}")
    print(f"dropped (unknown symbols): {dropped}")
    print("pegasus names left out:", *skipped, sep="\n  ")
    return df[COLUMNS].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    args = parser.parse_args()
    df = build(args.shared)
    out = OUT / "markers.tsv"
    df.to_csv(out, sep="\t", index=False, lineterminator="\n")
    n_terms = df.groupby("kind")["term"].nunique().to_dict()
    print(f"wrote {out}: {len(df)} rows, terms per kind {n_terms}")
    print(df.groupby("source").size().sort_values(ascending=False).to_string())


if __name__ == "__main__":
    main()
