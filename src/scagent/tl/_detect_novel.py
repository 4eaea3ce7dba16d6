"""``sa.tl.detect_novel``: which cells belong to no known type, judged per group."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
from anndata import AnnData

from .._constants import (
    LAYER_LOG1P,
    OBS_CLUSTER,
    OBS_ONTOLOGY,
    OBS_PROB_PREFIX,
    OBS_TISSUE,
    OBS_TYPE,
    OBSM_EMBED,
    OBSM_EMBED_TUNED,
    UNS_KEY,
)
from .._errors import InputDataError
from ..memory._errors import MemoryStoreBusy
from ..novelty import (
    JudgeParams,
    NeighbourSource,
    cell_signals,
    class_marker_baseline,
    group_evidence,
    judge_with_llm,
    open_set_rejected,
    statistical_decision,
)
from ..pp import prepare

__all__ = ["detect_novel", "novelty_source"]

logger = logging.getLogger("scagent")

OBS_NOVEL = "scagent_is_novel"
OBS_NOVEL_GROUP = "scagent_novel_group"
OBS_NOVELTY = "scagent_novelty_score"
OBS_HINT = "scagent_novel_hint"
OBS_HINT_ID = "scagent_novel_hint_ontology_id"
OBS_KNOWN_CALL = "scagent_cell_type_if_known"
OBS_KNOWN_ID = "scagent_cell_type_ontology_id_if_known"
OBSM_SIGNALS = "scagent_novelty_signals"
UNKNOWN = "unknown"
#: Marker probability a hint needs to be given.
HINT_PROBABILITY = 0.3


def _tuned(adata: AnnData) -> np.ndarray | None:
    if OBSM_EMBED_TUNED not in adata.obsm:
        return None
    V = np.asarray(adata.obsm[OBSM_EMBED_TUNED], dtype=np.float32).copy()
    V[~(np.abs(V).sum(axis=1) > 0)] = np.nan  # cells no plugin read
    return V


def novelty_source(
    reference, encoder, registry, *, memory=None, build: bool = True
) -> NeighbourSource | None:
    """Nearest known cells for novelty detection.

    The vector memory for the bundled or a stored reference (filled from the reference the
    first time, in both spaces); an in-memory exact search for a reference given as an
    AnnData. With ``build=False``, ``None`` unless the memory already holds the reference
    (nothing is embedded).
    """
    from ..memory import ReferenceData, VectorMemory
    from ..memory._build import embed_both, store_cells
    from ..novelty import ExactNeighbours, MemoryNeighbours

    if isinstance(memory, NeighbourSource):
        return memory
    if isinstance(reference, ReferenceData) and reference.name:
        mem = memory if memory is not None else VectorMemory()
        if mem.count("pretrained", dataset=reference.name, encoder=encoder.sha256) == 0:
            if not build:
                return None
            logger.warning(
                "The vector memory holds no cells of reference %r for this encoder: embedding "
                "them once in both spaces (a minute or two).",
                reference.name,
            )
            ref = reference.adata
            emb = embed_both(
                ref, ref.obs["tissue"].astype(str).to_numpy(), model=encoder, registry=registry
            )
            store_cells(mem, ref, emb, dataset=reference.name)
        return MemoryNeighbours(mem, encoder.sha256, dataset=reference.name)
    if not build:
        return None
    ref = reference.adata if isinstance(reference, ReferenceData) else reference
    emb = embed_both(
        ref, ref.obs["tissue"].astype(str).to_numpy(), model=encoder, registry=registry
    )
    return ExactNeighbours(
        {"pretrained": emb.pretrained, "tuned": emb.tuned},
        ref.obs,
        plugin_version=emb.plugin_version,
    )


def detect_novel(
    adata: AnnData,
    *,
    llm=None,
    reference=None,
    plugins=None,
    model="default",
    memory=None,
    k: int = 10,
    judge: JudgeParams | None = None,
    build_memory: bool = True,
    copy: bool = False,
) -> AnnData | None:
    """Find the cells no known type fits, and say what they might be.

    Each cell gets signals of novelty (:mod:`scagent.novelty`): its annotation's confidence
    and the experts' agreement, its similarity to its called class against that class's own
    cells, the marker expert's mass on types the reference lacks (beyond the called class's
    own cells'), whether any known class's one-vs-rest model accepts it, and in both
    embedding spaces (pretrained, D_g; plugin-tuned, D_s) its distance to the called class's
    centroid against the class's own 95% quantile and its ``k`` nearest known cells from the
    memory. Cells are grouped by query cluster split by called type; a group is a candidate
    as a whole when the marker or open-set vote picks it, else its suspected cells are when
    they stand out from the rest of the query (:func:`scagent.novelty.statistical_decision`).
    **Each candidate group** is judged once: by the LLM when one is given (a structured
    prompt with the group's evidence; validated JSON
    ``{is_novel, closest_known_type, confidence, explanation}``), else, or when the LLM
    fails, by the statistical judge.

    Parameters
    ----------
    adata
        Cells annotated by :func:`scagent.tl.annotate` (annotated first if not).
    llm
        A scagent LLM backend or langchain chat model; ``None``: the statistical judge.
    reference, plugins, model
        As in :func:`scagent.tl.annotate`.
    memory
        The :class:`~scagent.memory.VectorMemory` to search (default: the user's), or a
        :class:`~scagent.novelty.NeighbourSource`.
    k
        Nearest known cells per space (the paper's m).
    judge
        Statistical judge parameters (default: the shipped ones).
    build_memory
        Embed the reference into the vector memory when it is not there yet (a minute or
        two, once). ``False``: without it, the neighbour signals are left out (recorded in
        ``uns``), as :func:`scagent.tl.annotate` does by default.
    copy
        Return a copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or the copy when ``copy=True``. Sets

    ``.obs['scagent_is_novel']``, ``.obs['scagent_novel_group']``
        Whether the cell belongs to a group judged novel, and its candidate group.
    ``.obs['scagent_novelty_score']``
        The statistical judge's probability that the cell is of no known type.
    ``.obsm['scagent_novelty_signals']``
        The per-cell signals behind it (a DataFrame, one column per signal, and the called
        class's own median distance ratio they are read against).
    ``.obs['scagent_cell_type']``
        ``"unknown"`` for novel cells (the annotation's own call stays in
        ``.obs['scagent_cell_type_if_known']`` and ``..._ontology_id_if_known``).
    ``.obs['scagent_novel_hint']``, ``..._hint_ontology_id``
        For novel cells whose markers support one: "unknown to the reference; markers suggest
        <type> (<CL id>)".
    ``.obsm['X_scagent']``
        The pretrained embedding, if it was missing and the neighbour search needs it.
    ``.uns['scagent']['novel_groups']``
        Per candidate group: its evidence, the judgement, which judge decided, explanation.
    ``.uns['scagent']['novelty']``
        Groups, novel cells, LLM calls, seconds, judge provenance; the query's shift from
        the reference (``query_shift``) and the open-set rejection its relative bar was set
        against (``open_set_background``; see :func:`scagent.novelty.open_set_background`).
    """
    from ..experts import marker_expert
    from ..experts._evidence import human_view
    from ..experts._reference import _fingerprint, class_names, class_self_similarity
    from ..memory import ReferenceData, reference_data
    from ..models import load_encoder
    from ..plugins import resolve_registry
    from ._annotate import annotate
    from ._embed import embed

    t0 = time.perf_counter()
    target = adata.copy() if copy else adata
    if OBS_TYPE not in target.obs:
        annotate(target, reference=reference, plugins=plugins, model=model, novelty=False)
    _known_calls(target.obs)
    work = target if LAYER_LOG1P in target.layers else prepare(target, copy=True)
    if work.n_obs != target.n_obs:
        msg = "Preparing the data changed the number of cells; prepare it first."
        raise InputDataError(msg)
    ref = (
        reference_data(reference) if reference is None or isinstance(reference, str) else reference
    )
    ref_obs = (ref.adata if isinstance(ref, ReferenceData) else ref).obs
    encoder = load_encoder(model)
    registry = resolve_registry(plugins)
    busy = ""
    try:
        source = novelty_source(ref, encoder, registry, memory=memory, build=build_memory)
    except MemoryStoreBusy as err:  # another process holds a Milvus Lite store
        busy = f"No nearest-neighbour evidence: {err}"
        logger.warning("%s Novelty detection goes on without it.", busy)
        source = None
    if source is not None and OBSM_EMBED not in target.obsm:  # only neighbours need it
        embed(target, model=encoder)
    classes = sorted(set(ref_obs["cell_type_ontology_term_id"].astype(str)))
    names = class_names(ref_obs)
    species = work.uns.get(UNS_KEY, {}).get("genes", {}).get("species", "human")
    X, genes = human_view(work.layers[LAYER_LOG1P], work.var_names, species)
    genes = np.asarray(genes)
    clusters = target.obs[OBS_CLUSTER].astype(str).to_numpy()
    markers = marker_expert(X, genes, groups=clusters)
    ref_adata = ref.adata if isinstance(ref, ReferenceData) else ref
    open_set = open_set_rejected(
        X,
        genes,
        target.obs[OBS_TISSUE].astype(str).to_numpy(),
        reference=ref_adata,
        version=ref.version if isinstance(ref, ReferenceData) else _fingerprint(ref),
        calls=target.obs[OBS_ONTOLOGY].astype(str).to_numpy(),
    )
    baseline = class_marker_baseline(
        ref_adata, genes, target.obs[OBS_ONTOLOGY].astype(str).to_numpy(), classes
    )
    sim = target.obs.get("scagent_reference_similarity")
    signals = cell_signals(
        target,
        source=source,
        pretrained=np.asarray(target.obsm[OBSM_EMBED]) if OBSM_EMBED in target.obsm else None,
        tuned=_tuned(target),
        markers=markers,
        reference_classes=classes,
        self_similarity=class_self_similarity(ref, genes),
        similarity=sim.to_numpy(dtype=float) if sim is not None else np.full(target.n_obs, np.nan),
        open_set=open_set,
        marker_baseline=baseline,
        k=k,
    )
    params = judge or JudgeParams.shipped()
    decision = statistical_decision(signals.frame, clusters, params)
    groups, means, stat = decision.groups, decision.means, decision.probability
    ref_prob = target.obs.get(OBS_PROB_PREFIX + "reference")
    ref_prob = (
        ref_prob.to_numpy(dtype=float) if ref_prob is not None else np.full(target.n_obs, np.nan)
    )
    known = sorted(set(names.values()))
    records, novel, calls = {}, np.zeros(target.n_obs, dtype=bool), 0
    for g in means.index:
        ev = group_evidence(
            g,
            groups,
            signals,
            X=X,
            genes=genes,
            names=names,
            reference_probability=ref_prob,
            statistical=float(stat[g]),
        )
        verdict, how = None, "statistical (no LLM configured)"
        if llm is not None:
            verdict, how, n_calls = judge_with_llm(llm, ev, known)
            calls += n_calls
            if verdict is None:
                how = f"statistical ({how})"
        if verdict is None:
            p = float(stat[g])
            verdict = {
                "is_novel": p >= 0.5,
                "closest_known_type": ev["nearest_known_type"],
                "confidence": round(max(p, 1 - p), 3),
                "explanation": _explain(ev, p),
            }
        novel |= (groups == g) & bool(verdict["is_novel"])
        records[g] = {"evidence": ev, "judgement": verdict, "judge": how}
    _write(target, signals, decision, novel, records, calls, params, t0, note=busy)
    return target if copy else None


def clear_novelty(adata: AnnData) -> None:
    """Remove what :func:`detect_novel` wrote (a new annotation makes it stale)."""
    stale = (OBS_NOVEL, OBS_NOVEL_GROUP, OBS_NOVELTY, OBS_HINT, OBS_HINT_ID)
    stale += (OBS_KNOWN_CALL, OBS_KNOWN_ID)
    adata.obs.drop(columns=[c for c in stale if c in adata.obs], inplace=True)
    if OBSM_SIGNALS in adata.obsm:
        del adata.obsm[OBSM_SIGNALS]
    for key in ("novelty", "novel_groups"):
        adata.uns.get(UNS_KEY, {}).pop(key, None)


def _known_calls(obs: pd.DataFrame) -> None:
    """Keep the annotation's own calls (or restore them, when novelty ran before), so the
    signals always read the calls, never an earlier "unknown"."""
    if OBS_KNOWN_CALL in obs and OBS_KNOWN_ID in obs:
        obs[OBS_TYPE] = pd.Categorical(obs[OBS_KNOWN_CALL].astype(str).to_numpy())
        obs[OBS_ONTOLOGY] = pd.Categorical(obs[OBS_KNOWN_ID].astype(str).to_numpy())
    else:
        obs[OBS_KNOWN_CALL] = pd.Categorical(obs[OBS_TYPE].astype(str).to_numpy())
        obs[OBS_KNOWN_ID] = pd.Categorical(obs[OBS_ONTOLOGY].astype(str).to_numpy())


def _explain(ev: dict, p: float) -> str:
    """The statistical judge's verdict in words, from the evidence it weighed."""
    s = ev["signals"]
    dist = ev["distance_to_class_centroid"].get("pretrained", {})
    parts = [
        f"mean confidence {ev['mean_confidence']:.2f}",
        f"experts agree {ev['experts_agree']:.0%}",
    ]
    if "median_over_class_q95" in dist:
        parts.append(
            f"median distance {dist['median_over_class_q95']:.2f}x the 95% spread of "
            f"{ev['nearest_known_type']}"
        )
    if "open_set_rejected" in s:
        parts.append(f"{s['open_set_rejected']:.0%} rejected by every known class's own model")
    if s.get("outside_markers", 0) > 0.2 and ev.get("markers_suggest"):
        parts.append(
            f"{s['outside_markers']:.0%} of the marker evidence on types the reference lacks; "
            f"markers suggest {ev['markers_suggest']['cell_type']}"
        )
    verdict = "novel" if p >= 0.5 else "a known type"
    return f"Statistical judge: P(novel) = {p:.2f}, so {verdict} ({'; '.join(parts)})."


def _write(target, signals, decision, novel, records, calls, params, t0, *, note="") -> None:
    score, groups = decision.score, decision.groups
    obs = target.obs
    hints = signals.hints
    known_calls = obs[OBS_KNOWN_CALL].astype(str).to_numpy()
    obs[OBS_NOVEL] = novel
    obs[OBS_NOVEL_GROUP] = pd.Categorical(groups.astype(str))
    obs[OBS_NOVELTY] = score.astype(np.float32)
    numeric = signals.frame.select_dtypes("number").astype(np.float32)
    target.obsm[OBSM_SIGNALS] = numeric.set_axis(obs.index)
    obs[OBS_TYPE] = pd.Categorical(np.where(novel, UNKNOWN, known_calls))
    ids = obs[OBS_KNOWN_ID].astype(str).to_numpy()
    obs[OBS_ONTOLOGY] = pd.Categorical(np.where(novel, "", ids))
    ok = novel & (hints["hint_probability"].to_numpy() >= HINT_PROBABILITY)
    text = [
        f"unknown to the reference; markers suggest {n}, {i}" if m else ""
        for n, i, m in zip(hints["hint_name"], hints["hint_id"], ok)
    ]
    obs[OBS_HINT] = pd.Categorical(text)
    obs[OBS_HINT_ID] = pd.Categorical(np.where(ok, hints["hint_id"].to_numpy(dtype=str), ""))
    if not note and not signals.info["spaces"]:
        note = (
            "No nearest-neighbour evidence: the vector memory does not hold this reference "
            "yet (`scagent memory build` adds it once, as do `scagent annotate "
            "--build-memory` and detect_novel(build_memory=True))."
        )
    uns = target.uns.setdefault(UNS_KEY, {})
    uns["novel_groups"] = _jsonable(records)
    uns["novelty"] = _jsonable(
        {
            "n_candidate_groups": len(records),
            "n_novel_groups": sum(bool(r["judgement"]["is_novel"]) for r in records.values()),
            "n_novel_cells": int(novel.sum()),
            "llm_calls": calls,
            "judges": {g: r["judge"] for g, r in records.items()},
            "k": signals.info["k"],
            "spaces": signals.info["spaces"],
            "note": note,
            "judge_provenance": params.provenance,
            "query_shift": None if np.isnan(decision.shift) else round(decision.shift, 2),
            "open_set_background": None
            if np.isnan(decision.background)
            else round(decision.background, 3),
            "seconds": round(time.perf_counter() - t0, 2),
        }
    )


def _jsonable(value):
    from ._annotate import _jsonable as convert

    return convert(value)
