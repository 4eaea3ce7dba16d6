"""``sa.tl.add_cell_type``: learn a new cell type from a few labelled cells."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np
from anndata import AnnData

from .._errors import InputDataError

__all__ = ["AddTypeResult", "add_cell_type"]

logger = logging.getLogger("scagent")

#: Fewest labelled cells a new type is learnt from.
MIN_CELLS = 10
#: Held-out recall of the new type below which nothing is stored.
MIN_RECALL = 0.5
#: Largest drop of the known types' held-out macro-F1 accepted (against the old plugin).
MAX_FORGETTING = 0.05


@dataclass
class AddTypeResult:
    """What :func:`add_cell_type` did.

    Attributes
    ----------
    cell_type, ontology_id, tissue
        The new type (its Cell Ontology id when the name matches a term, else ``""``).
    reference
        The reference it joined (``"atlas"``: the bundled atlas, via the store's
        ``learnt-types`` dataset).
    n_cells, n_replay
        New cells, and stored reference cells replayed so known types are not forgotten.
    plugin
        ``<name>@v<version>`` of the new plugin version (the previous one is kept:
        ``scagent plugins rollback <name>``).
    new_type_recall, known_macro_f1, known_macro_f1_before
        Held-out recall of the new type; macro-F1 of the known types on held-out cells,
        after and (from the previous version's manifest) before.
    vectors
        Cells stored in each embedding space of the vector memory (none when the memory
        holds no cells of this reference yet; it embeds them when first searched).
    seconds
        Time per step.
    history
        The plugin's training record per epoch (stage, losses).
    """

    cell_type: str
    ontology_id: str
    tissue: str
    reference: str
    n_cells: int
    n_replay: int
    plugin: str
    new_type_recall: float
    known_macro_f1: float
    known_macro_f1_before: float | None
    vectors: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    history: list = field(default_factory=list)


def _replay(ref: AnnData, tissue: str, per_class: int, seed: int) -> np.ndarray:
    """Rows of up to ``per_class`` stored cells of every type of ``tissue``."""
    rng = np.random.default_rng(seed)
    obs = ref.obs
    own = np.flatnonzero(obs["tissue"].astype(str).to_numpy() == tissue)
    types = obs["cell_type"].astype(str).to_numpy()[own]
    rows = [rng.permutation(own[types == t])[:per_class] for t in np.unique(types)]
    return np.sort(np.concatenate(rows)) if rows else np.zeros(0, dtype=int)


def _known_f1(metrics: dict, new: str) -> float:
    per = {k: v for k, v in metrics.get("per_class", {}).items() if k != new}
    return float(np.mean([v["f1"] for v in per.values()])) if per else float("nan")


def add_cell_type(
    cells: AnnData,
    cell_type: str,
    *,
    tissue: str,
    reference: str | None = None,
    ontology_id: str | None = None,
    plugins=None,
    model: str | os.PathLike = "default",
    replay_per_class: int = 100,
    config=None,
    seed: int | None = None,
    progress: bool | None = None,
) -> AddTypeResult:
    """Learn a new cell type from a few labelled cells, without forgetting the known ones.

    The paper's incremental training (its section 2.4): the tissue's plugin is trained
    again on the new cells plus a replay sample of the stored reference cells of that
    tissue (its "data merge"), the new type taking the next free slot of the 200-slot head;
    the result is validated on held-out cells, and only then is memory updated, each part
    atomically: the dataset store (the new cells with their provenance, which every
    expert reads: the reference expert knows the type at the next annotation), the plugin
    registry (a new version; the previous one stays for ``scagent plugins rollback``) and,
    when it holds this reference, the vector memory (both spaces; class statistics follow).

    Parameters
    ----------
    cells
        The labelled cells of the new type (counts, or log-normalised; 10 or more, 30 to
        50 recommended).
    cell_type
        The new type's name; a Cell Ontology id is attached when it matches a term.
    tissue
        The tissue the type belongs to (a new tissue gets a new plugin).
    reference
        The stored reference to extend (default: the bundled atlas).
    ontology_id
        The type's Cell Ontology id, when the name does not match a term.
    plugins, model
        Plugin registry or folder (default: the user's, then the shipped ones); encoder.
    replay_per_class
        Stored cells of each known type of the tissue replayed during training.
    config
        :class:`~scagent.plugins.TrainConfig` (default: 8 fine-tuning epochs).
    seed, progress
        Random seed; progress bars.

    Returns
    -------
    What was done.

    Raises
    ------
    InputDataError
        Too few cells, a type the reference already has in that tissue, or a result that
        failed validation (nothing is stored then).
    """
    from .._settings import settings
    from ..knowledge import cell_ontology
    from ..memory import DatasetStore, harmonise_reference, reference_data
    from ..memory._learnt import LEARNT, merge_cells, store_learnt
    from ..models import load_encoder
    from ..plugins import TrainConfig, resolve_registry, train_plugin

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    seed = settings.seed if seed is None else seed
    if cells.n_obs < MIN_CELLS:
        msg = (
            f"{cells.n_obs} cells are too few to learn a type from; give at least "
            f"{MIN_CELLS} (30 to 50 recommended)."
        )
        raise InputDataError(msg)
    ref = reference_data(reference)
    ref_obs = ref.adata.obs
    in_tissue = ref_obs["tissue"].astype(str) == tissue
    known = set(ref_obs.loc[in_tissue, "cell_type"].astype(str))
    if cell_type in known:
        msg = (
            f"The reference already has {cell_type!r} in {tissue}; annotate with it, or name "
            "the new type differently."
        )
        raise InputDataError(msg)
    labelled = cells.copy()
    labelled.obs["scagent_new_type"] = cell_type
    # obs["dataset"] says the cells were learnt, whichever stored dataset holds them
    new, report = harmonise_reference(
        labelled, name=LEARNT, cell_type_key="scagent_new_type", tissue=tissue
    )
    onto = cell_ontology()
    if ontology_id is not None:
        if ontology_id not in onto:
            msg = f"{ontology_id!r} is not a Cell Ontology id (e.g. CL:0000236)."
            raise InputDataError(msg)
        new.obs["cell_type_ontology_term_id"] = ontology_id
        new.obs["cell_type_ontology_label"] = onto.label(ontology_id)
    new.obs["cell_type"] = cell_type
    term = str(new.obs["cell_type_ontology_term_id"].iloc[0])
    term = term if term in onto else ""
    times["prepare"] = round(time.perf_counter() - t0, 2)

    t = time.perf_counter()
    encoder = load_encoder(model)
    registry = resolve_registry(plugins)
    name = registry.plugin_for(tissue) if tissue in registry.tissues() else tissue
    before = registry.manifest(name).get("metrics", {}) if name in registry.names() else {}
    rows = _replay(ref.adata, tissue, replay_per_class, seed)
    train = merge_cells(ref.adata[rows].copy(), new)
    cfg = config or TrainConfig(max_epochs=8, patience=3)
    plugin = train_plugin(
        train,
        label_key="cell_type",
        tissue=tissue,
        name=name,
        model=encoder,
        config=cfg,
        seed=seed,
        progress=progress,
    )
    times["train plugin"] = round(time.perf_counter() - t, 2)
    per_class = plugin.metrics.get("per_class", {})
    recall = per_class.get(cell_type, {}).get("recall", float("nan"))
    f1_after = _known_f1(plugin.metrics, cell_type)
    f1_before = _known_f1(before, cell_type) if before else None
    problems = []
    if not recall >= MIN_RECALL:
        problems.append(f"held-out recall of {cell_type!r} is {recall:.2f} (< {MIN_RECALL})")
    if f1_before is not None and f1_after < f1_before - MAX_FORGETTING:
        problems.append(
            f"known types' held-out macro-F1 fell from {f1_before:.3f} to {f1_after:.3f}"
        )
    if problems:
        msg = (
            "The new type was not learnt well enough, so nothing was stored: "
            + "; ".join(problems)
            + ". Give more (or cleaner) labelled cells."
        )
        raise InputDataError(msg)

    t = time.perf_counter()
    store = DatasetStore()
    store_learnt(store, new, report, reference=ref.name)
    saved = registry.save(plugin)
    times["store"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    vectors = _update_vectors(ref.name, new, encoder, registry, tissue)
    times["vector memory"] = round(time.perf_counter() - t, 2)
    times["total"] = round(time.perf_counter() - t0, 2)
    result = AddTypeResult(
        cell_type,
        term,
        tissue,
        ref.name,
        int(new.n_obs),
        len(rows),
        f"{saved.name}@v{saved.version}",
        float(recall),
        f1_after,
        f1_before,
        vectors,
        times,
        plugin.training.get("history", []),
    )
    logger.info("Learnt %r (%s) in %.0f s.", cell_type, result.plugin, times["total"])
    return result


def _update_vectors(reference: str, new: AnnData, encoder, registry, tissue: str) -> dict:
    """Store the new cells in both spaces when the vector memory holds this reference;
    the tissue's tuned rows are re-embedded with the new plugin version."""
    from ..memory import VectorMemory
    from ..memory._build import embed_both, insert_cells
    from ..memory._reference import reference_data

    try:
        mem = VectorMemory()
        if mem.count("pretrained", dataset=reference, encoder=encoder.sha256) == 0:
            return {}
    except Exception as err:  # an unreachable store must not undo a stored type
        logger.warning("Vector memory not updated (%s); `scagent memory build` does it.", err)
        return {"error": str(err)}
    ref = reference_data(None if reference == "atlas" else reference).adata
    rows = np.flatnonzero(ref.obs["tissue"].astype(str).to_numpy() == tissue)
    cells = ref[rows].copy()
    emb = embed_both(cells, np.full(cells.n_obs, tissue), model=encoder, registry=registry)
    out = {"removed": mem.delete(dataset=reference, tissue=tissue)}
    out.update(insert_cells(mem, cells, emb, dataset=reference))
    mem.close()
    return out
