"""``sa.tl.annotate``: several experts, one calibrated call per cell."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from anndata import AnnData

from .._constants import (
    LAYER_LOG1P,
    OBS_AGREEMENT,
    OBS_CALL_PREFIX,
    OBS_CLUSTER,
    OBS_CONF,
    OBS_CONSENSUS,
    OBS_CONSENSUS_ID,
    OBS_ONTOLOGY,
    OBS_PROB_PREFIX,
    OBS_SIMILARITY,
    OBS_TISSUE,
    OBS_TISSUE_CONF,
    OBS_TYPE,
    OBS_TYPE_PER_CELL,
    OBS_VOTE_GROUP,
    OBSM_EMBED_TUNED,
    OBSM_PROBS,
    UNS_KEY,
)
from .._errors import InputDataError
from ..experts import EXPERTS, FusionParams, Gathered, alone, fuse, gather_evidence
from ..experts._consensus import consensus_terms
from ..experts._explain import cluster_report
from ..knowledge import cell_ontology
from ..pp import prepare
from ._vote import majority_vote, over_cluster

__all__ = ["AnnotationResult", "annotate", "annotate_prepared", "write_result"]

logger = logging.getLogger("scagent")


@dataclass
class AnnotationResult:
    """What :func:`annotate` found, before it is written into an AnnData.

    Attributes
    ----------
    obs
        Per-cell columns (keys as documented in :func:`annotate`).
    probs
        (cells, classes) fused probabilities; ``classes`` in ``record['classes']``.
    tuned
        Plugin-tuned embeddings, or ``None`` when the plugin expert did not run.
    record
        What goes to ``.uns['scagent']['annotate']``.
    gathered
        The experts' raw evidence (for benchmarks and novelty detection).
    """

    obs: pd.DataFrame
    probs: np.ndarray
    tuned: np.ndarray | None
    record: dict
    gathered: Gathered | None = field(default=None, repr=False)


def _fit_share(gathered: Gathered) -> np.ndarray:
    """Each cell's cluster's reference fit to the tissue it was annotated in."""
    fit = gathered.tissue.evidence.get("reference_fit") or {}
    clusters = gathered.structure.clusters
    out = np.ones(len(clusters), dtype=np.float32)
    for i, (c, t) in enumerate(zip(clusters, gathered.tissue.per_cell)):
        out[i] = fit.get(str(c), {}).get(str(t), 1.0)
    return out


def annotate_prepared(
    adata: AnnData,
    *,
    tissue: str | None = None,
    reference=None,
    plugins=None,
    model="default",
    experts: tuple[str, ...] = EXPERTS,
    groupby: str | None = None,
    fusion: FusionParams | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> AnnotationResult:
    """Annotate a query that :func:`scagent.pp.prepare` has prepared (the engine behind
    :func:`annotate`; arguments as there)."""
    from ..memory._reference import resolve_reference

    t0 = time.perf_counter()
    reference, plugins, experts, note = resolve_reference(
        reference, plugins=plugins, experts=experts
    )
    groups = None
    if groupby is not None:
        if groupby not in adata.obs:
            msg = f"groupby={groupby!r} is not an .obs column; columns: {list(adata.obs.columns)}."
            raise InputDataError(msg)
        groups = adata.obs[groupby].astype(str).to_numpy()
    params = fusion or FusionParams.shipped()
    g = gather_evidence(
        adata,
        reference=reference,
        tissue=tissue,
        plugins=plugins,
        model=model,
        experts=experts,
        groups=groups,
        batch_size=batch_size,
        progress=progress,
    )
    ev = g.evidence
    fused = fuse(ev, params)
    classes = np.asarray(ev.classes, dtype=object)
    names = np.asarray(ev.names, dtype=object)
    call_terms, call_names = classes[fused.call], names[fused.call]
    cons, _ = consensus_terms(fused.probs, fused.call, ev.classes)
    onto = cell_ontology()
    by_id = dict(zip(classes, names))
    cons_names = [by_id.get(t) or (onto.label(t) if t in onto else "") for t in cons]
    obs = pd.DataFrame(index=adata.obs_names.copy())
    obs[OBS_TISSUE] = pd.Categorical(g.tissue.per_cell.astype(str))
    obs[OBS_TISSUE_CONF] = _fit_share(g)
    obs[OBS_TYPE] = pd.Categorical(call_names.astype(str))
    obs[OBS_ONTOLOGY] = pd.Categorical(call_terms.astype(str))
    obs[OBS_CONF] = fused.confidence
    obs[OBS_AGREEMENT] = fused.agreement
    obs[OBS_CONSENSUS] = pd.Categorical(np.asarray(cons_names, dtype=str))
    obs[OBS_CONSENSUS_ID] = pd.Categorical(cons.astype(str))
    obs[OBS_CLUSTER] = pd.Categorical(g.structure.clusters)
    obs[OBS_SIMILARITY] = ev.cell_info["reference_similarity"].astype(np.float32)
    expert_calls = {}
    for name in ev.probs:
        Pe = alone(ev, name, params.temperatures.get(name, 1.0))
        valid = ~np.isnan(Pe).any(axis=1)
        best = np.nan_to_num(Pe, nan=-1).argmax(axis=1)
        call = np.where(valid, names[best], "")
        obs[OBS_CALL_PREFIX + name] = pd.Categorical(call.astype(str))
        obs[OBS_PROB_PREFIX + name] = np.where(
            valid, Pe[np.arange(len(best)), best], np.nan
        ).astype(np.float32)
        expert_calls[name] = call
    X = adata.layers[LAYER_LOG1P]
    record = {
        "classes": list(ev.classes),
        "class_names": list(ev.names),
        "experts": list(ev.probs),
        "tissue": {
            "decision": g.tissue.tissue or "",
            "how": g.tissue.how,
            "evidence": _jsonable(g.tissue.evidence),
        },
        "structure": g.structure.info,
        "expert_info": _jsonable({k: c.info for k, c in g.calls.items()}),
        "fusion": _jsonable(
            {
                "weights": params.weights,
                "smoothing": params.smoothing,
                "temperatures": params.temperatures,
                "provenance": params.provenance,
            }
        ),
        "clusters": _jsonable(
            cluster_report(
                X,
                adata.var_names,
                g.structure.clusters,
                call_terms,
                call_names,
                fused.confidence,
                g.tissue.per_cell,
                expert_calls,
            )
        ),
        "notes": list(g.notes) + ([note] if note else []),
        "seconds": {**g.seconds, "total": round(time.perf_counter() - t0, 2)},
    }
    return AnnotationResult(obs, fused.probs, g.tuned, record, g)


#: The key an empty dictionary key is stored under: HDF5 has no empty names (e.g. the Cell
#: Ontology id of a learnt type that no term matches).
EMPTY_KEY = "(none)"


def _jsonable(value):
    """A copy of ``value`` that h5ad and JSON can store (no None, no empty keys, numpy
    scalars as Python)."""
    if isinstance(value, dict):
        return {(str(k) or EMPTY_KEY): _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value if v is not None]
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_result(adata: AnnData, res: AnnotationResult) -> None:
    """Store an :class:`AnnotationResult` in ``adata`` (keys as in :func:`annotate`)."""
    for col in res.obs.columns:
        adata.obs[col] = res.obs[col].values
    adata.obsm[OBSM_PROBS] = res.probs
    if res.tuned is not None:
        adata.obsm[OBSM_EMBED_TUNED] = np.nan_to_num(res.tuned)
    adata.uns.setdefault(UNS_KEY, {})["annotate"] = res.record


def vote(
    adata: AnnData,
    *,
    groupby: str | None = None,
    pcs: np.ndarray | None = None,
    resolution: float = 5.0,
) -> None:
    """Replace per-cell calls by each group's majority, within one tissue and one space.

    Groups are ``groupby``'s clusters, or Leiden over-clusters of the query's own principal
    components (one space for every cell); either way a group is split by assigned tissue,
    so cells annotated in different tissues never vote together.
    """
    per_cell = adata.obs[OBS_TYPE].astype(str).to_numpy()
    tissue = adata.obs[OBS_TISSUE].astype(str).to_numpy()
    if groupby is None:
        if pcs is None:
            from ..experts._structure import query_structure

            pcs = query_structure(adata.layers[LAYER_LOG1P]).pcs
        base = over_cluster(pcs, resolution=resolution)
    else:
        base = adata.obs[groupby].astype(str).to_numpy()
    groups = np.array([f"{t}|{b}" for t, b in zip(tissue, base)])
    voted = majority_vote(per_cell, groups)
    onto = dict(zip(per_cell, adata.obs[OBS_ONTOLOGY].astype(str)))
    adata.obs[OBS_TYPE_PER_CELL] = adata.obs[OBS_TYPE]
    adata.obs[OBS_VOTE_GROUP] = pd.Categorical(groups)
    adata.obs[OBS_TYPE] = pd.Categorical(voted)
    adata.obs[OBS_ONTOLOGY] = pd.Categorical([onto[t] for t in voted])
    adata.uns.setdefault(UNS_KEY, {}).setdefault("annotate", {})["vote"] = {
        "groupby": groupby or "leiden over-clusters of the query's principal components",
        "within": "assigned tissue",
        "resolution": resolution if groupby is None else -1,
        "n_groups": len(set(groups)),
        "n_changed": int((voted != per_cell).sum()),
    }


def annotate(
    adata: AnnData,
    *,
    tissue: str | None = None,
    reference=None,
    plugins=None,
    model: str | os.PathLike = "default",
    experts: tuple[str, ...] = EXPERTS,
    groupby: str | None = None,
    majority_voting: bool = False,
    novelty: bool = True,
    build_memory: bool = False,
    fusion: FusionParams | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Name each cell's type as an expert would: several experts, one calibrated call.

    Three experts judge every cell, each kept visible: the **reference expert** (a
    classifier trained on the reference cells restricted to the genes this query measured,
    cached per gene panel), the **marker expert** (curated marker sets with Cell Ontology
    ids, scored by rank per cell and per cluster) and the **plugin expert** (the paper's
    MoE-LoRA tissue plugins on the foundation encoder). The tissue is decided for the
    dataset or its clusters, never per lone cell; when no reference tissue fits, cells are
    annotated against every reference class. The experts' probabilities are pooled with
    weights learnt on cross-study tasks, smoothed over the query's neighbour graph, and a
    confidence model learnt on the same tasks says how likely each call is right.

    Parameters
    ----------
    adata
        Cells x genes: counts, or log-normalised data (see :func:`scagent.pp.prepare`;
        scaled data is used through ``.raw`` or a counts layer).
    tissue
        The tissue of every cell, when known (one of the reference's tissues).
    reference
        The reference to annotate against: ``None`` (the bundled atlas), the name of a
        dataset of the dataset store (``scagent memory add``; annotated against it alone,
        with its own plugins once ``scagent plugins train --reference NAME`` trained them,
        never the default ones, which know the atlas's classes), a
        :class:`~scagent.memory.ReferenceData` or a labelled AnnData (raw counts; ``obs``
        ``cell_type``, ``cell_type_ontology_term_id``, ``tissue``, ``dataset``).
    plugins
        A :class:`~scagent.plugins.PluginRegistry` or folder (default: the user's plugins,
        then the shipped ones; with a stored dataset's name as ``reference``, its own).
    model
        The encoder the plugins were trained on.
    experts
        The experts to run (``"reference"`` always).
    groupby
        ``.obs`` column of the user's clusters; the experts judge these instead of
        scagent's own Leiden clusters.
    majority_voting
        Also replace each call by its group's majority (CellTypist's option); groups are
        ``groupby``'s clusters or Leiden over-clusters, split by tissue.
    novelty
        Then mark the cells no known type fits (:func:`scagent.tl.detect_novel` with the
        statistical judge; its nearest-neighbour evidence is used when the vector memory
        holds the reference): they are called ``"unknown"``.
    build_memory
        With ``novelty``: first embed the reference into the vector memory when it is not
        there yet (a minute or two, once; later runs reuse it), so novelty detection also
        reads the nearest known cells in both spaces and how far the query sits from the
        reference (:func:`scagent.novelty.query_shift`). A labelled AnnData reference is
        embedded on every call (it has no name to be stored under).
    fusion
        Fusion settings (default: the shipped ones learnt on cross-study tasks).
    batch_size, progress
        Cells per forward pass of the plugin expert, progress bars.
    copy
        Return a copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or the annotated copy when ``copy=True``. Sets

    ``.obs['scagent_cell_type']``, ``.obs['scagent_cell_type_ontology_id']``
        The call (a reference class, or ``"unknown"`` for novel cells) and its Cell
        Ontology id; with ``novelty``, also the columns :func:`scagent.tl.detect_novel`
        writes (``scagent_is_novel``, ``scagent_novel_hint``...).
    ``.obs['scagent_confidence']``
        Calibrated probability that the call is right.
    ``.obs['scagent_agreement']``
        Share of the experts whose own best class is the call.
    ``.obs['scagent_cell_type_consensus']``, ``..._consensus_ontology_id``
        The most specific term the fused probabilities support at 90%: the call, or an
        ancestor when experts cannot tell sibling types apart (empty when none).
    ``.obs['scagent_tissue']``, ``.obs['scagent_tissue_confidence']``
        The tissue each cell was annotated in (``"across tissues"``: every reference
        class) and its cluster's fit to that tissue.
    ``.obs['scagent_cluster']``
        The query cluster the experts judged.
    ``.obs['scagent_reference_similarity']``
        Cosine similarity of the cell to its nearest reference class (on the shared genes).
    ``.obs['scagent_call_<expert>']``, ``.obs['scagent_prob_<expert>']``
        Each expert's own call and calibrated probability.
    ``.obsm['scagent_probabilities']``
        Fused probabilities over the reference classes (``uns[...]['classes']``).
    ``.obsm['X_scagent_tuned']``
        Plugin-tuned embedding (the paper's F_s), when the plugin expert ran.
    ``.uns['scagent']['annotate']``
        Classes, tissue decision and its evidence, each expert's record, fusion settings,
        one record per cluster (call, experts' calls, the marker genes behind the call),
        notes and timings.
    """
    target = adata.copy() if copy else adata
    work = target if LAYER_LOG1P in target.layers else prepare(target, copy=True)
    res = annotate_prepared(
        work,
        tissue=tissue,
        reference=reference,
        plugins=plugins,
        model=model,
        experts=experts,
        groupby=groupby,
        fusion=fusion,
        batch_size=batch_size,
        progress=progress,
    )
    if work is not target and work.n_vars != target.n_vars:
        logger.info("Annotated on the genes of .raw (%d).", work.n_vars)
    from ._detect_novel import clear_novelty, detect_novel

    clear_novelty(target)
    write_result(target, res)
    if majority_voting:
        vote(target, groupby=groupby, pcs=res.gathered.structure.pcs)
    if novelty:
        detect_novel(
            target,
            reference=reference,
            plugins=plugins,
            model=model,
            build_memory=build_memory,
        )
    return target if copy else None
