"""``sa.tl.annotate``: tissue assignment, then each cell through its tissue's plugin."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from anndata import AnnData
from tqdm.auto import tqdm

from .._constants import OBSM_EMBED_TUNED, UNS_KEY
from .._errors import InputDataError
from .._settings import settings
from ..models import Encoder, TokenBatch, load_encoder, model_input
from ..plugins import TISSUE_PLUGIN, PluginRegistry, default_registry, host_for
from ._vote import majority_vote, over_cluster

__all__ = [
    "AnnotationResult",
    "annotate",
    "annotate_matrix",
    "resolve_registry",
    "run_record",
    "write_result",
]

logger = logging.getLogger("scagent")

OBS_TISSUE = "scagent_tissue"
OBS_TISSUE_CONF = "scagent_tissue_confidence"
OBS_TYPE = "scagent_cell_type"
OBS_ONTOLOGY = "scagent_cell_type_ontology_id"
OBS_CONF = "scagent_confidence"
OBS_TYPE_PER_CELL = "scagent_cell_type_per_cell"
OBS_VOTE_GROUP = "scagent_vote_group"


def resolve_registry(plugins: PluginRegistry | str | os.PathLike | None) -> PluginRegistry:
    """A registry from ``None`` (the default one), a folder, or a registry."""
    if plugins is None:
        return default_registry()
    if isinstance(plugins, PluginRegistry):
        return plugins
    return PluginRegistry([plugins])


@dataclass
class AnnotationResult:
    """Per-cell outputs of :func:`annotate_matrix`."""

    tissue: np.ndarray
    tissue_confidence: np.ndarray
    cell_type: np.ndarray
    ontology_id: np.ndarray
    confidence: np.ndarray
    embedding: np.ndarray
    plugins: dict = field(default_factory=dict)  # name -> version


def annotate_matrix(
    X,
    gene_ids: np.ndarray,
    encoder: Encoder,
    registry: PluginRegistry,
    *,
    tissue: str | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> AnnotationResult:
    """Annotate the rows of a log1p(CP10k) matrix (the engine behind :func:`annotate`).

    Every batch is tokenised once; the tissue-assignment plugin and then each tissue's
    plugin run on the same tokens, switching adapters on the one loaded encoder.
    """
    batch_size = batch_size or settings.batch_size
    progress = settings.progress if progress is None else progress
    host = host_for(encoder)
    available = registry.tissues()
    plugin_names = {}
    if tissue is not None:
        if tissue not in available:
            msg = (
                f"Unknown tissue {tissue!r}: there is no plugin for it. Available tissues: "
                f"{available}. Leave `tissue` unset to let scagent assign tissues."
            )
            raise InputDataError(msg)
        tissue_key = None
    else:
        tp = registry.load(TISSUE_PLUGIN)
        tissue_key = host.attach(tp)
        plugin_names[TISSUE_PLUGIN] = tp.version
        missing = sorted(set(tp.labels) - set(available))
        if missing:
            msg = f"The tissue plugin predicts {missing}, which have no cell-type plugin."
            raise InputDataError(msg)
    keys: dict[str, str] = {}

    def key_of(t: str) -> str:
        if t not in keys:
            p = registry.load(registry.plugin_for(t))
            keys[t] = host.attach(p)
            plugin_names[p.name] = p.version
        return keys[t]

    n = X.shape[0]
    res = AnnotationResult(
        tissue=np.empty(n, dtype=object),
        tissue_confidence=np.ones(n, dtype=np.float32),
        cell_type=np.empty(n, dtype=object),
        ontology_id=np.empty(n, dtype=object),
        confidence=np.empty(n, dtype=np.float32),
        embedding=np.empty((n, encoder.dim), dtype=np.float32),
        plugins=plugin_names,
    )
    for start in tqdm(range(0, n, batch_size), disable=not progress, desc="annotating"):
        stop = min(start + batch_size, n)
        chunk = X[start:stop]
        cache: dict[int, TokenBatch] = {}

        def tokens_for(key: str, chunk=chunk, cache=cache) -> TokenBatch:
            n_tok = host.max_len(key)
            if n_tok not in cache:
                cache[n_tok] = host.tokens(chunk, gene_ids, n_tok)[0]
            return cache[n_tok]

        if tissue_key is not None:
            tout = host.predict(tissue_key, tokens_for(tissue_key))
            labels = np.array(host.plugins[tissue_key].labels, dtype=object)
            tissues = labels[tout.probs.argmax(1)]
            res.tissue_confidence[start:stop] = tout.probs.max(1)
        else:
            tissues = np.full(stop - start, tissue, dtype=object)
        for t in pd.unique(tissues):
            rows = np.flatnonzero(tissues == t)
            key = key_of(t)
            out = host.predict(key, tokens_for(key).take(rows))
            plugin = host.plugins[key]
            best = out.probs.argmax(1)
            pos = start + rows
            res.tissue[pos] = t
            res.cell_type[pos] = np.asarray(plugin.labels, dtype=object)[best]
            res.ontology_id[pos] = np.asarray(plugin.ontology_ids, dtype=object)[best]
            res.confidence[pos] = out.probs.max(1)
            res.embedding[pos] = out.embedding
    host.use(None)
    return res


def annotate(
    adata: AnnData,
    *,
    tissue: str | None = None,
    plugins: PluginRegistry | str | os.PathLike | None = None,
    model: str | os.PathLike = "default",
    groupby: str | None = None,
    majority_voting: bool = False,
    resolution: float = 5.0,
    batch_size: int | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Name each cell's type with the tissue plugins (the paper's annotation path).

    Without ``tissue``, the tissue-assignment plugin predicts every cell's tissue and each
    cell goes to its own tissue's plugin, so a dataset may mix tissues. With ``tissue``,
    that tissue's plugin annotates all cells. Every cell is tokenised from its own
    expressed genes, so no gene intersection with the reference is needed.

    Parameters
    ----------
    adata
        Cells x genes: counts, or log-normalised data (see :func:`scagent.pp.prepare`;
        scaled data is refused unless ``.raw`` holds the unscaled values).
    tissue
        Use this tissue's plugin for all cells (see ``scagent plugins list``).
    plugins
        A :class:`~scagent.plugins.PluginRegistry` or a folder of plugins (default: the
        user's plugins, then the ones shipped with scagent).
    model
        The encoder the plugins were trained on.
    groupby
        ``.obs`` column of clusters; each cluster gets its most frequent cell type
        (majority vote, as CellTypist offers).
    majority_voting
        Vote within Leiden over-clusters of the tuned embedding (when ``groupby`` is
        not given).
    resolution
        Leiden resolution of the over-clustering.
    batch_size
        Cells per forward pass (default ``sa.settings.batch_size``).
    copy
        Return a copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or the annotated copy when ``copy=True``. Sets

    ``.obs['scagent_tissue']``, ``.obs['scagent_tissue_confidence']``
        Assigned tissue and the tissue plugin's probability (1 when ``tissue`` is given).
    ``.obs['scagent_cell_type']``, ``.obs['scagent_cell_type_ontology_id']``
        Cell type and its Cell Ontology id (after voting, when voting).
    ``.obs['scagent_confidence']``
        Calibrated probability of the per-cell prediction.
    ``.obs['scagent_cell_type_per_cell']``, ``.obs['scagent_vote_group']``
        Only with voting: the per-cell prediction and the voting group.
    ``.obsm['X_scagent_tuned']``
        L2-normalised plugin-tuned embedding (the paper's F_s) from each cell's plugin.
    ``.uns['scagent']['annotate']``
        Encoder, plugins and versions used, mode and voting settings.
    """
    target = adata.copy() if copy else adata
    if groupby is not None and groupby not in target.obs:
        msg = f"groupby={groupby!r} is not an .obs column; columns: {list(target.obs.columns)}."
        raise InputDataError(msg)
    encoder = load_encoder(model)
    registry = resolve_registry(plugins)
    X, ids, n_in = model_input(target, encoder)
    res = annotate_matrix(X, ids, encoder, registry, tissue=tissue, batch_size=batch_size)
    write_result(target, res)
    target.uns.setdefault(UNS_KEY, {})["annotate"] = run_record(
        encoder, registry, res, tissue=tissue, n_genes_in_vocab=n_in
    )
    if groupby is not None or majority_voting:
        vote(target, groupby=groupby, resolution=resolution)
    return target if copy else None


def run_record(encoder: Encoder, registry: PluginRegistry, res: AnnotationResult, **extra) -> dict:
    """What ``.uns['scagent']['annotate']`` records: encoder, plugins and versions, options."""
    tissue = extra.pop("tissue", None)
    return {
        "model": encoder.name,
        "model_sha256": encoder.sha256,
        "plugins": {k: int(v) for k, v in res.plugins.items()},
        "registry": [str(r) for r in registry.roots],
        "tissue": tissue or "assigned per cell",
        **extra,
    }


def write_result(adata: AnnData, res: AnnotationResult) -> None:
    """Store an :class:`AnnotationResult` in ``adata`` (keys as in :func:`annotate`)."""
    adata.obs[OBS_TISSUE] = pd.Categorical(res.tissue.astype(str))
    adata.obs[OBS_TISSUE_CONF] = res.tissue_confidence
    adata.obs[OBS_TYPE] = pd.Categorical(res.cell_type.astype(str))
    adata.obs[OBS_ONTOLOGY] = pd.Categorical(res.ontology_id.astype(str))
    adata.obs[OBS_CONF] = res.confidence
    adata.obsm[OBSM_EMBED_TUNED] = res.embedding


def vote(adata: AnnData, *, groupby: str | None = None, resolution: float = 5.0) -> None:
    """Replace per-cell types by each group's majority (after :func:`annotate`)."""
    if groupby is None:
        groups = over_cluster(adata.obsm[OBSM_EMBED_TUNED], resolution=resolution)
    else:
        groups = adata.obs[groupby].astype(str).to_numpy()
    per_cell = adata.obs[OBS_TYPE].astype(str).to_numpy()
    voted = majority_vote(per_cell, groups)
    onto = dict(zip(per_cell, adata.obs[OBS_ONTOLOGY].astype(str)))
    adata.obs[OBS_TYPE_PER_CELL] = adata.obs[OBS_TYPE]
    adata.obs[OBS_VOTE_GROUP] = pd.Categorical(groups)
    adata.obs[OBS_TYPE] = pd.Categorical(voted)
    adata.obs[OBS_ONTOLOGY] = pd.Categorical([onto[t] for t in voted])
    adata.uns.setdefault(UNS_KEY, {}).setdefault("annotate", {})["vote"] = {
        "groupby": groupby or "leiden over-clustering of X_scagent_tuned",
        "resolution": resolution if groupby is None else None,
        "n_groups": len(set(groups)),
        "n_changed": int((voted != per_cell).sum()),
    }
