"""Filling the memory from labelled cells and searching it with new ones (AnnData-aware).

Both spaces are computed the way annotation computes them: the pretrained space with
:func:`scagent.tl.embed`, the tuned space with each cell's tissue plugin
(:func:`scagent.experts.plugin_expert`). A cell's plugin version (``<plugin>@v<n>``) is
stored with its tuned vector, so searches compare a query only with cells embedded by
the same plugin.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from anndata import AnnData

from .._constants import LAYER_LOG1P, OBS_TISSUE, OBSM_EMBED, OBSM_EMBED_TUNED
from ._neighbours import Neighbours
from ._vectors import VectorMemory

__all__ = ["Embedded", "embed_both", "search_cells", "store_cells"]

logger = logging.getLogger("scagent")


@dataclass
class Embedded:
    """Cells in both spaces.

    Attributes
    ----------
    pretrained
        (cells, d) encoder embeddings.
    tuned
        (cells, d) plugin embeddings; NaN rows where the cell's tissue has no plugin.
    plugin_version
        Per cell ``<plugin>@v<version>`` (``""`` without a plugin).
    encoder
        The encoder's sha256.
    seconds
        Time per space.
    skipped
        Tissues whose plugin could not run (e.g. trained on another encoder), and why.
    """

    pretrained: np.ndarray
    tuned: np.ndarray
    plugin_version: np.ndarray
    encoder: str
    seconds: dict
    skipped: dict = field(default_factory=dict)


def embed_both(
    adata: AnnData,
    tissue_per_cell,
    *,
    model="default",
    registry=None,
    pretrained: np.ndarray | None = None,
) -> Embedded:
    """Embed ``adata`` in the pretrained space and, through its tissues' plugins, the
    tuned space.

    Parameters
    ----------
    adata
        Cells (raw counts or anything :func:`scagent.pp.prepare` reads).
    tissue_per_cell
        The tissue whose plugin reads each cell (``""``: none).
    model
        The encoder.
    registry
        Plugins (default :func:`scagent.plugins.default_registry`).
    pretrained
        Pretrained embeddings already computed (e.g. from the embedding cache).

    Returns
    -------
    The embeddings of both spaces.
    """
    from ..experts import plugin_expert
    from ..models import load_encoder, model_input
    from ..plugins import PluginError, default_registry
    from ..pp import prepare
    from ..tl import embed

    encoder = load_encoder(model)
    registry = default_registry() if registry is None else registry
    # one prepared copy for both spaces (``adata`` may be a shared reference: not modified)
    data = adata if LAYER_LOG1P in adata.layers else prepare(adata, copy=True)
    seconds = {}
    t0 = time.perf_counter()
    if pretrained is None:
        embed(data, model=encoder)
        pretrained = data.obsm[OBSM_EMBED]
    seconds["pretrained"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    tissues = np.asarray(tissue_per_cell, dtype=object)
    X, ids, _ = model_input(data, encoder)
    tuned = np.full((len(tissues), encoder.dim), np.nan, dtype=np.float32)
    versions = np.full(len(tissues), "", dtype=object)
    skipped = {}
    available = set(registry.tissues())
    for tissue in pd.unique(tissues):
        if tissue not in available:
            continue
        rows = np.flatnonzero(tissues == tissue)
        try:  # one tissue at a time: a plugin that does not fit leaves only its cells out
            call, emb = plugin_expert(X[rows], ids, encoder, registry, tissues[rows])
        except PluginError as err:
            skipped[tissue] = str(err)
            logger.warning("Tuned space: %s", err)
            continue
        tuned[rows] = emb
        for name, used in call.info["plugins"].items():
            versions[rows] = f"{name}@v{used['version']}"
    seconds["tuned"] = round(time.perf_counter() - t0, 2)
    return Embedded(np.asarray(pretrained), tuned, versions, encoder.sha256, seconds, skipped)


def store_cells(
    memory: VectorMemory, adata: AnnData, emb: Embedded, *, dataset: str
) -> dict[str, int]:
    """Replace dataset ``dataset``'s cells in both spaces with these.

    ``adata.obs`` must have ``tissue``, ``cell_type`` and ``cell_type_ontology_term_id``
    (empty or ``name:<label>`` where the label has no Cell Ontology term).

    Returns
    -------
    Rows removed and stored per space (``removed``, ``pretrained``, ``tuned``).
    """
    removed = memory.delete(dataset=dataset)
    return {"removed": removed, **insert_cells(memory, adata, emb, dataset=dataset)}


def insert_cells(
    memory: VectorMemory, adata: AnnData, emb: Embedded, *, dataset: str
) -> dict[str, int]:
    """Add these cells to dataset ``dataset`` in both spaces (nothing removed; see
    :func:`store_cells` for ``adata.obs``).

    Returns
    -------
    Rows stored per space (``pretrained``, ``tuned``).
    """
    obs = adata.obs
    fields = {
        "cell_ids": adata.obs_names.astype(str).to_numpy(),
        "tissue": obs["tissue"].astype(str).to_numpy(),
        "cell_type": obs["cell_type"].astype(str).to_numpy(),
        # ``name:<label>`` (a label without a Cell Ontology term) is stored as no id
        "ontology_id": obs["cell_type_ontology_term_id"]
        .astype(str)
        .map(lambda t: "" if t.startswith("name:") else t)
        .to_numpy(),
    }
    out = {}
    out["pretrained"] = memory.insert(
        "pretrained", emb.pretrained, dataset=dataset, encoder=emb.encoder, **fields
    )
    has = np.isfinite(emb.tuned).all(axis=1)
    out["tuned"] = 0
    if has.any():
        out["tuned"] = memory.insert(
            "tuned",
            emb.tuned[has],
            dataset=dataset,
            encoder=emb.encoder,
            plugin_version=emb.plugin_version[has],
            **{k: v[has] for k, v in fields.items()},
        )
    if not has.all():
        missing = sorted(set(fields["tissue"][~has]))
        logger.warning(
            "%d cells of tissues without a plugin (%s) are in the pretrained space only.",
            int((~has).sum()),
            ", ".join(missing),
        )
    return out


def _vote(nb: Neighbours) -> np.ndarray:
    """The most frequent tissue among each query's neighbours (``""`` without any)."""
    out = np.full(nb.distance.shape[0], "", dtype=object)
    for i, row in enumerate(nb.fields["tissue"]):
        found = row[~np.isnan(nb.distance[i])]
        if len(found):
            values, counts = np.unique(found, return_counts=True)
            out[i] = values[np.argmax(counts)]
    return out


def search_cells(
    memory: VectorMemory,
    adata: AnnData,
    *,
    k: int = 10,
    tissue: str | None = None,
    model="default",
    registry=None,
) -> tuple[dict[str, Neighbours], np.ndarray]:
    """The nearest known cells of each cell of ``adata`` in both spaces.

    The pretrained space is searched across tissues. In the tuned space each cell is read
    by one tissue's plugin and compared with that plugin's cells: the tissue is
    ``tissue`` if given, else ``obs['scagent_tissue']`` (from :func:`scagent.tl.annotate`)
    where set, else the most frequent tissue of the cell's pretrained neighbours.

    Parameters
    ----------
    memory
        The vector memory.
    adata
        Query cells; ``.obsm['X_scagent']`` is used when present.
    k
        Neighbours per cell and space.
    tissue
        One tissue for every cell.
    model, registry
        The encoder and plugins.

    Returns
    -------
    Neighbours per space and the tissue used for each cell in the tuned space.
    """
    from ..models import load_encoder
    from ..tl import embed

    encoder = load_encoder(model)
    if OBSM_EMBED not in adata.obsm:
        embed(adata, model=encoder)
    pre = memory.search("pretrained", adata.obsm[OBSM_EMBED], k=k, encoder=encoder.sha256)
    if tissue is not None:
        tissues = np.full(adata.n_obs, tissue, dtype=object)
    else:
        tissues = _vote(pre)
        if OBS_TISSUE in adata.obs:
            given = adata.obs[OBS_TISSUE].astype(str).to_numpy()
            known = set(memory.class_stats("tuned").table["tissue"])
            tissues = np.where(np.isin(given, list(known)), given, tissues)
    emb = embed_both(
        adata, tissues, model=encoder, registry=registry, pretrained=adata.obsm[OBSM_EMBED]
    )
    adata.obsm[OBSM_EMBED_TUNED] = emb.tuned
    rows = np.isfinite(emb.tuned).all(axis=1)
    tuned = Neighbours.empty("tuned", adata.n_obs, k)
    if rows.any():
        hits = memory.search(
            "tuned",
            emb.tuned[rows],
            k=k,
            tissue=tissues[rows],
            plugin_version=emb.plugin_version[rows],
            encoder=encoder.sha256,
        )
        tuned.distance[rows] = hits.distance
        for f, values in hits.fields.items():
            tuned.fields[f][rows] = values
    return {"pretrained": pre, "tuned": tuned}, tissues
