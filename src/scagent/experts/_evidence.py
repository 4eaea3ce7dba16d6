"""Gather every expert's opinion on a query, on the reference's label space."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._constants import LAYER_LOG1P, UNS_KEY
from .._errors import InputDataError
from ..knowledge import gene_table
from ._base import ExpertCall
from ._fusion import EXPERTS, Evidence
from ._reference import class_names, reference_expert
from ._structure import QueryStructure, query_structure
from ._tissue import ACROSS, TissueDecision, class_tissues, decide_tissue

__all__ = ["Gathered", "align", "gather_evidence", "human_view"]

logger = logging.getLogger("scagent")
LABEL_KEY = "cell_type_ontology_term_id"


@dataclass
class Gathered:
    """Everything the experts said about a query.

    Attributes
    ----------
    evidence
        The experts' probabilities on the reference classes (input of the fusion).
    calls
        Each expert's own call (before alignment), by name.
    tissue
        The tissue decision.
    structure
        The query's clusters and neighbour graph.
    tuned
        (cells, d) plugin-tuned embeddings (NaN rows where no plugin ran), or ``None``.
    notes
        What was skipped and why (e.g. no plugins for this encoder).
    """

    evidence: Evidence
    calls: dict[str, ExpertCall]
    tissue: TissueDecision
    structure: QueryStructure
    tuned: np.ndarray | None
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def human_view(X, genes, species: str) -> tuple[sp.csr_matrix, np.ndarray]:
    """The matrix over unique human symbols: mouse genes through their human orthologues
    (summing linear values of genes that share one), other genes as they are."""
    X = sp.csr_matrix(X, dtype=np.float32)
    genes = np.asarray(genes, dtype=str)
    if species != "mouse":
        return X, genes
    table = gene_table().mouse_to_human
    human = np.array([table.get(g, "") for g in genes], dtype=object)
    keep = np.flatnonzero(human != "")
    codes, uniq = pd.factorize(human[keep])
    merge = sp.csr_matrix(
        (np.ones(len(keep), dtype=np.float32), (keep, codes)), shape=(len(genes), len(uniq))
    )
    lin = X.copy()
    lin.data = np.expm1(lin.data)
    out = sp.csr_matrix(lin @ merge)
    out.data = np.log1p(out.data)
    return out, np.asarray(uniq, dtype=str)


def align(call: ExpertCall, classes: list[str]) -> np.ndarray:
    """An expert's probabilities on ``classes`` (terms outside them dropped, rows
    renormalised; a row with no mass on ``classes`` becomes NaN)."""
    pos = {t: i for i, t in enumerate(classes)}
    out = np.zeros((call.n_cells, len(classes)), dtype=np.float64)
    for j, t in enumerate(call.terms):
        if t in pos:
            out[:, pos[t]] += call.probs[:, j]
    total = out.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, out / total, np.nan)
    return out


def _reference_per_tissue(X, genes, ref, decision: TissueDecision, global_call: ExpertCall):
    """The reference expert of each cell's tissue (the all-tissue model where none)."""
    probs = {}
    calls = {}
    for t in pd.unique(decision.per_cell):
        rows = np.flatnonzero(decision.per_cell == t)
        if t == ACROSS:
            calls[t] = global_call.take(rows)
        else:
            calls[t] = reference_expert(X[rows], genes, reference=ref, tissue=t)
        probs[t] = rows
    terms = list(dict.fromkeys(t for c in calls.values() for t in c.terms))
    names = {}
    for c in calls.values():
        names.update(zip(c.terms, c.names))
    n = len(decision.per_cell)
    P = np.zeros((n, len(terms)), dtype=np.float32)
    extra = {k: np.zeros(n, dtype=np.float32) for k in global_call.cell_info}
    col = {t: i for i, t in enumerate(terms)}
    for t, rows in probs.items():
        c = calls[t]
        P[np.ix_(rows, [col[x] for x in c.terms])] = c.probs
        for k in extra:
            extra[k][rows] = c.cell_info[k]
    info = {t: c.info for t, c in calls.items()}
    return ExpertCall("reference", P, terms, [names[t] for t in terms], info, extra)


def gather_evidence(
    adata: AnnData,
    *,
    reference=None,
    tissue: str | None = None,
    plugins=None,
    model="default",
    experts: tuple[str, ...] = EXPERTS,
    groups=None,
    batch_size: int | None = None,
    progress: bool | None = None,
    seed: int = 0,
) -> Gathered:
    """Run the experts on a prepared query (``layers['scagent_log1p_cp10k']``).

    Parameters
    ----------
    adata
        The query after :func:`scagent.pp.prepare`.
    reference
        :class:`~scagent.memory.ReferenceData`, a labelled AnnData, or ``None`` (bundled).
    tissue
        The user's tissue (one of the reference's), or ``None`` to decide it.
    plugins
        A :class:`~scagent.plugins.PluginRegistry` (default: the user's, then shipped).
    model
        The encoder the plugins were trained on (name, folder or loaded encoder).
    experts
        Which experts to run (any of ``"reference"``, ``"markers"``, ``"plugin"``).
    groups
        The user's clusters (else Leiden on the query).
    batch_size, progress
        For the plugin expert.
    seed
        Seed of the query's structure and samples.

    Returns
    -------
    The gathered evidence.
    """
    from ..memory import ReferenceData, reference_data
    from ._markers import marker_calls, tissue_evidence

    unknown = sorted(set(experts) - set(EXPERTS))
    if unknown or not experts:
        msg = f"Unknown experts {unknown or experts}; choose among {list(EXPERTS)}."
        raise InputDataError(msg)
    if "reference" not in experts:
        msg = "The reference expert is needed (it defines the classes and the tissue fit)."
        raise InputDataError(msg)
    seconds = {}
    t0 = time.perf_counter()
    ref = reference_data() if reference is None else reference
    ref_obs = (ref.adata if isinstance(ref, ReferenceData) else ref).obs
    species = adata.uns.get(UNS_KEY, {}).get("genes", {}).get("species", "human")
    X, genes = human_view(adata.layers[LAYER_LOG1P], adata.var_names, species)
    structure = query_structure(X, groups=groups, seed=seed)
    seconds["structure"] = structure.info["seconds"]
    tissues = class_tissues(ref_obs)
    if tissue is not None and tissue not in tissues:
        msg = (
            f"Unknown tissue {tissue!r}: the reference has {sorted(tissues)}. Leave the tissue "
            "unset to let scagent decide it (it annotates across tissues when none fits)."
        )
        raise InputDataError(msg)
    t = time.perf_counter()
    global_call = reference_expert(X, genes, reference=ref)
    seconds["reference (all tissues)"] = round(time.perf_counter() - t, 2)
    notes: list[str] = []
    encoder = registry = enc_input = None
    if "plugin" in experts:
        encoder, registry, enc_input, note = _plugin_setup(adata, model, plugins)
        if note:
            notes.append(note)
    votes = markers = None
    if tissue is None:
        t = time.perf_counter()
        if "markers" in experts:
            markers = tissue_evidence(X, genes, groups=structure.clusters)
        if enc_input is not None:
            from ._plugin import tissue_votes

            votes = tissue_votes(*enc_input, encoder, registry, structure.clusters, seed=seed)
        seconds["tissue evidence"] = round(time.perf_counter() - t, 2)
    decision = decide_tissue(
        global_call, tissues, structure.clusters, given=tissue, markers=markers, plugin_votes=votes
    )
    classes = sorted(set(ref_obs[LABEL_KEY].astype(str)))
    names = class_names(ref_obs)
    allowed = np.ones((adata.n_obs, len(classes)), dtype=bool)
    for t_name in pd.unique(decision.per_cell):
        if t_name != ACROSS:
            rows = decision.per_cell == t_name
            allowed[rows] = np.isin(classes, list(tissues[t_name]))
    t = time.perf_counter()
    calls = {"reference": _reference_per_tissue(X, genes, ref, decision, global_call)}
    seconds["reference"] = round(time.perf_counter() - t, 2)
    if "markers" in experts:
        t = time.perf_counter()
        marker_tissue = decision.tissue if decision.how in ("given", "dataset") else None
        calls["markers"], calls["markers_cluster"] = marker_calls(
            X, genes, groups=structure.clusters, terms=classes, tissue=marker_tissue
        )
        seconds["markers"] = round(time.perf_counter() - t, 2)
    tuned = None
    if enc_input is not None:
        from ._plugin import plugin_expert

        t = time.perf_counter()
        route = _plugin_route(decision, structure.clusters, votes)
        calls["plugin"], tuned = plugin_expert(
            *enc_input, encoder, registry, route, batch_size=batch_size, progress=progress
        )
        seconds["plugin"] = round(time.perf_counter() - t, 2)
    probs = {name: align(call, classes) for name, call in calls.items()}
    ev = Evidence(
        classes,
        [names[c] for c in classes],
        allowed,
        probs,
        structure.graph,
        dict(calls["reference"].cell_info),
    )
    seconds["total"] = round(time.perf_counter() - t0, 2)
    return Gathered(ev, calls, decision, structure, tuned, notes, seconds)


def _plugin_setup(adata: AnnData, model, plugins):
    """Encoder, registry and encoder input for the plugin expert, or a note why not."""
    from ..models import load_encoder, model_input
    from ..plugins import TISSUE_PLUGIN, resolve_registry

    encoder = load_encoder(model)
    registry = resolve_registry(plugins)
    names = registry.names()
    probe = TISSUE_PLUGIN if TISSUE_PLUGIN in names else (names[0] if names else None)
    sha = registry.manifest(probe).get("base_model", {}).get("sha256") if probe else None
    if sha != encoder.sha256:
        note = (
            f"plugin expert skipped: no plugin in {registry} was trained on encoder "
            f"{encoder.name!r}; train some with `scagent plugins train --model ...`"
        )
        logger.warning(note)
        return encoder, registry, None, note
    X, ids, _ = model_input(adata, encoder)
    return encoder, registry, (X, ids), None


def _plugin_route(decision: TissueDecision, clusters: np.ndarray, votes) -> np.ndarray:
    """Each cell's plugin tissue: its own, or (across tissues) its cluster's plugin vote."""
    route = decision.per_cell.copy()
    across = route == ACROSS
    if across.any() and votes is not None:
        best = votes.idxmax(axis=1)
        route[across] = best.reindex(np.asarray(clusters)[across]).to_numpy()
    return route
