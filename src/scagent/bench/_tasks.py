"""Where users live: cross-study queries and degraded queries built from real data.

Every task pairs a reference (raw counts, harmonised labels) with a query that the
reference never saw, shaped the way a user would hand it over (counts, log-normalised values,
a few hundred genes...), and the query's true Cell Ontology ids.

Cross-study tasks hold a study out whole: PBMC3k and Kang et al. (control and IFN-beta
stimulated cells apart) in both directions, scanpy's ``pbmc68k_reduced`` (765 genes, scaled
``X`` with log-normalised ``.raw``), the Wu et al. T cells of five tissues against the other
studies, each Baron donor against the other three, and the non-malignant oligodendroglioma
cells against a reference without brain. Degraded tasks take the held-out 20% of a stratified
split of the atlas and cut it to 2,000 / 1,000 / 500 variable genes, hand it over
log-normalised or TPM-like, or thin its UMIs four-fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._constants import TARGET_SUM
from ..datasets import reference_atlas
from ._splits import stratified_split

__all__ = [
    "PBMC68K_LABELS",
    "Task",
    "cross_study_tasks",
    "degraded_tasks",
    "pbmc68k_query",
]

#: pbmc68k_reduced's bulk-sorted labels as Cell Ontology ids (CD34+ cells are not scored).
PBMC68K_LABELS = {
    "CD4+/CD25 T Reg": "CL:0000815",
    "CD4+/CD45RA+/CD25- Naive T": "CL:0000895",
    "CD4+/CD45RO+ Memory": "CL:0000897",
    "CD8+ Cytotoxic T": "CL:0000625",
    "CD8+/CD45RA+ Naive Cytotoxic": "CL:0000900",
    "CD19+ B": "CL:0000236",
    "CD56+ NK": "CL:0000623",
    "CD14+ Monocyte": "CL:0001054",
    "Dendritic": "CL:0000451",
}


@dataclass
class Task:
    """A query a reference never saw, with the truth.

    Attributes
    ----------
    name
        Short description (``"PBMC3k -> Kang (control)"``).
    kind
        ``"cross-study"`` or ``"degraded"``.
    reference
        Labelled reference cells (raw counts in ``X``; ``obs`` as the bundled atlas).
    query
        The query as a user would give it (see the task's ``note``).
    truth
        Cell Ontology id per query cell; ``""`` for cells not scored (e.g. CD34+ cells).
    tissue
        The query's tissue when it has one (peers train on that tissue's cells).
    note
        What the query holds.
    group
        Tasks that share query cells or a held-out study (``"kang"``, ``"baron"``,
        ``"degraded"``...): fusion settings evaluated on a task are learnt without its group.
    """

    name: str
    kind: str
    reference: AnnData
    query: AnnData
    truth: np.ndarray
    tissue: str | None = None
    note: str = ""
    group: str = ""
    extra: dict = field(default_factory=dict)


def _truth(adata: AnnData) -> np.ndarray:
    return adata.obs["cell_type_ontology_term_id"].astype(str).to_numpy()


def _measured(adata: AnnData, atlas: AnnData) -> AnnData:
    """The cells with only the genes their own study measured (as the study's file had)."""
    datasets = adata.obs["dataset"].astype(str).unique()
    keep = np.zeros(adata.n_vars, dtype=bool)
    for d in datasets:
        keep |= atlas.var[f"measured_in_{d}"].to_numpy()
    out = adata[:, keep].copy()
    out.uns = {}
    return out


def pbmc68k_query() -> tuple[AnnData, np.ndarray]:
    """scanpy's ``pbmc68k_reduced`` as shipped, and its truth (``""`` for CD34+ cells)."""
    import scanpy as sc

    query = sc.datasets.pbmc68k_reduced()
    truth = query.obs["bulk_labels"].astype(str).map(PBMC68K_LABELS).fillna("").to_numpy()
    return query, truth


def cross_study_tasks(atlas: AnnData | None = None, *, quick: bool = False) -> list[Task]:
    """Every study held out whole against a reference of the others (module docstring)."""
    atlas = reference_atlas() if atlas is None else atlas
    obs = atlas.obs
    ds = obs["dataset"].astype(str).to_numpy()
    tasks: list[Task] = []

    def without(mask: np.ndarray) -> AnnData:
        return atlas[~mask]

    kang = ds == "kang2018"
    cond = obs.get("condition", pd.Series("", index=obs.index)).astype(str).to_numpy()
    for label, value in (("control", "control"), ("stimulated", "IFN-beta stimulated")):
        q = _measured(atlas[kang & (cond == value)], atlas)
        tasks.append(
            Task(
                f"PBMC3k -> Kang ({label})",
                "cross-study",
                without(kang),
                q,
                _truth(q),
                "blood",
                "raw UMI counts, 10x 3' v2"
                + (
                    ", IFN-beta stimulated (a condition the reference never saw)"
                    if value != "control"
                    else ""
                ),
                group="kang",
            )
        )
    pbmc = ds == "pbmc3k"
    q = _measured(atlas[pbmc], atlas)
    tasks.append(
        Task(
            "Kang -> PBMC3k",
            "cross-study",
            without(pbmc),
            q,
            _truth(q),
            "blood",
            "raw UMI counts, 10x 3' v1",
            group="pbmc3k",
        )
    )
    q68, truth68 = pbmc68k_query()
    tasks.append(
        Task(
            "atlas -> pbmc68k_reduced",
            "cross-study",
            atlas,
            q68,
            truth68,
            "blood",
            "765 genes; X scaled, .raw log-normalised (as scanpy ships it)",
            group="pbmc68k",
        )
    )
    wu = ds == "wu2020"
    q = _measured(atlas[wu], atlas)
    tasks.append(
        Task(
            "others -> Wu T cells (5 tissues)",
            "cross-study",
            without(wu),
            q,
            _truth(q),
            None,
            "raw UMI counts, 10x 5'; T cells of lung, endometrium, kidney, colon and blood",
            group="wu",
        )
    )
    baron = ds == "baron2016_human"
    donors = sorted(obs.loc[baron, "donor"].astype(str).unique())
    for donor in donors[:1] if quick else donors:
        held = baron & (obs["donor"].astype(str).to_numpy() == donor)
        q = _measured(atlas[held], atlas)
        tasks.append(
            Task(
                f"Baron donors -> {donor}",
                "cross-study",
                without(held),
                q,
                _truth(q),
                "pancreas",
                "raw UMI counts, inDrop; one donor held out",
                group="baron",
            )
        )
    tir = ds == "tirosh2016_oligodendroglioma"
    q = _measured(atlas[tir], atlas)
    tasks.append(
        Task(
            "others -> oligodendroglioma (non-malignant)",
            "cross-study",
            without(tir),
            q,
            _truth(q),
            "brain",
            "Smart-seq2 expected counts; the reference has no brain cells",
            group="tirosh",
        )
    )
    return tasks


def _log_normalised(counts: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(TARGET_SUM, sums, out=np.zeros_like(sums, dtype=float), where=sums > 0)
    out = sp.csr_matrix(sp.diags(scale) @ counts, dtype=np.float32)
    out.data = np.log1p(out.data)
    return out


def _variable_genes(logx: sp.csr_matrix, n: int) -> np.ndarray:
    mean = np.asarray(logx.mean(axis=0)).ravel()
    var = np.asarray(logx.multiply(logx).mean(axis=0)).ravel() - mean**2
    disp = np.where(mean > 0, var / np.maximum(mean, 1e-12), -np.inf)
    return np.sort(np.argsort(-disp, kind="stable")[:n])


def degraded_tasks(
    atlas: AnnData | None = None, *, seed: int = 0, quick: bool = False
) -> list[Task]:
    """Held-out atlas cells handed over the ways users hand data over (module docstring)."""
    atlas = reference_atlas() if atlas is None else atlas
    fold = stratified_split(atlas.obs, seed=seed)
    reference = atlas[fold.train]
    test = atlas[fold.test]
    truth = _truth(test)
    counts = sp.csr_matrix(test.X, dtype=np.float32)
    logx = _log_normalised(counts)
    rng = np.random.default_rng(seed)
    tasks: list[Task] = []

    def make(name: str, X, var_idx=None, note: str = "") -> None:
        var = test.var[[]].iloc[var_idx] if var_idx is not None else test.var[[]]
        q = AnnData(X=X, obs=test.obs[["dataset", "tissue"]].copy(), var=var.copy())
        tasks.append(Task(name, "degraded", reference, q, truth, None, note, group="degraded"))

    tasks.append(
        Task(
            "held-out cells, raw counts",
            "in-atlas",
            reference,
            AnnData(X=counts, obs=test.obs[["dataset", "tissue"]].copy(), var=test.var[[]].copy()),
            truth,
            None,
            "the 20% of a stratified split, as the atlas holds them (no degradation)",
            group="degraded",
        )
    )
    sizes = (1000,) if quick else (2000, 1000, 500)
    for n in sizes:
        idx = _variable_genes(logx, n)
        make(
            f"held-out cells, {n:,} variable genes",
            logx[:, idx].copy(),
            idx,
            f"log-normalised values of the {n:,} most variable genes (no counts)",
        )
    if quick:
        return tasks
    make("held-out cells, log-normalised", logx, None, "log1p(CP10k), all genes, no counts")
    length = np.exp(rng.normal(0.0, 0.5, size=counts.shape[1])).astype(np.float32)
    tpm = sp.csr_matrix(counts @ sp.diags(1.0 / length), dtype=np.float32)
    sums = np.asarray(tpm.sum(axis=1)).ravel()
    tpm = sp.csr_matrix(sp.diags(1e6 / np.maximum(sums, 1e-12)) @ tpm, dtype=np.float32)
    make(
        "held-out cells, TPM-like",
        tpm,
        None,
        "counts divided by a per-gene length factor, scaled to 1e6 per cell (non-integer)",
    )
    thin = counts.copy()
    thin.data = rng.binomial(thin.data.astype(np.int64), 0.25).astype(np.float32)
    thin.eliminate_zeros()
    make("held-out cells, UMIs / 4", thin, None, "raw counts thinned binomially to 25%")
    return tasks
