"""Training the whole plugin set of a labelled reference: tissue assignment + one per tissue."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from anndata import AnnData

from .._errors import InputDataError
from ..models import Encoder, load_encoder
from ._plugin import Plugin
from ._registry import PluginRegistry
from ._train import TrainConfig, train_plugin

__all__ = ["tissue_training_cells", "train_dataset_plugins", "train_reference_plugins"]

logger = logging.getLogger("scagent")


def tissue_training_cells(
    obs, tissue: str, *, tissue_key: str, label_key: str, borrow: bool
) -> np.ndarray:
    """Positions of the cells that train ``tissue``'s plugin.

    The tissue's own cells, plus (``borrow=True``) cells of the same types from other
    tissues: a type seen 3 times in colon but 60 times elsewhere is learnt from all 63.
    """
    own = (obs[tissue_key].astype(str) == tissue).to_numpy()
    if not borrow:
        return np.flatnonzero(own)
    types = set(obs.loc[own, label_key].astype(str))
    return np.flatnonzero(own | obs[label_key].astype(str).isin(types).to_numpy())


def train_reference_plugins(
    adata: AnnData,
    registry: PluginRegistry,
    *,
    tissue_key: str = "tissue",
    label_key: str = "cell_type",
    tissues: list[str] | None = None,
    tissue_plugin: bool = True,
    borrow: bool = True,
    tissue_max_len: int = 64,
    model: str | os.PathLike | Encoder = "default",
    config: TrainConfig | None = None,
    seed: int | None = None,
    progress: bool | None = None,
    record: dict | None = None,
) -> list[Plugin]:
    """Train and save the tissue-assignment plugin and one cell-type plugin per tissue.

    Parameters
    ----------
    adata
        Labelled reference with tissue and cell-type columns.
    registry
        Where the plugins are saved (each as a new version).
    tissue_key, label_key
        ``.obs`` columns of tissue and cell type.
    tissues
        Tissues to train (default: all).
    tissue_plugin
        Also train the tissue-assignment plugin on all cells.
    borrow
        Let each tissue's plugin also learn from same-type cells of other tissues.
    tissue_max_len
        Tokens per cell of the tissue-assignment plugin (a coarse question: fewer tokens,
        a faster first pass).
    model
        Encoder name, folder or object.
    config
        Optimisation settings.
    seed
        Random seed.
    progress
        Show progress bars.
    record
        What the plugins were trained on, kept in each manifest's
        ``training['reference_dataset']`` (see :func:`train_dataset_plugins`).

    Returns
    -------
    The saved plugins.
    """
    from ..memory._dataset_plugins import RECORD_KEY

    for key in (tissue_key, label_key):
        if key not in adata.obs:
            msg = f"adata.obs has no column {key!r}; columns: {list(adata.obs.columns)}."
            raise InputDataError(msg)
    encoder = model if isinstance(model, Encoder) else load_encoder(model)
    all_tissues = sorted(adata.obs[tissue_key].astype(str).unique())
    tissues = all_tissues if tissues is None else tissues
    unknown = sorted(set(tissues) - set(all_tissues))
    if unknown:
        msg = f"Tissues {unknown} are not in adata.obs[{tissue_key!r}]; it has {all_tissues}."
        raise InputDataError(msg)
    kw = {"model": encoder, "config": config, "seed": seed, "progress": progress}
    saved = []
    if tissue_plugin:
        logger.info("Training the tissue-assignment plugin on %d cells.", adata.n_obs)
        p = train_plugin(
            adata, label_key=tissue_key, kind="tissue_assignment", max_len=tissue_max_len, **kw
        )
        p.training["borrow"] = False
        if record is not None:
            p.training[RECORD_KEY] = record
        saved.append(registry.save(p))
    for tissue in tissues:
        pos = tissue_training_cells(
            adata.obs, tissue, tissue_key=tissue_key, label_key=label_key, borrow=borrow
        )
        sub = adata[pos].copy()
        logger.info("Training the %s plugin on %d cells.", tissue, sub.n_obs)
        p = train_plugin(sub, label_key=label_key, tissue=tissue, **kw)
        own = int((sub.obs[tissue_key].astype(str) == tissue).sum())
        p.training.update(borrow=borrow, n_own_tissue=own, n_borrowed=sub.n_obs - own)
        if record is not None:
            p.training[RECORD_KEY] = record
        saved.append(registry.save(p))
    return saved


def train_dataset_plugins(
    name: str,
    *,
    out: str | os.PathLike | None = None,
    tissues: list[str] | None = None,
    tissue_plugin: bool = True,
    borrow: bool = True,
    model: str | os.PathLike | Encoder = "default",
    config: TrainConfig | None = None,
    seed: int | None = None,
    progress: bool | None = None,
) -> list[Plugin]:
    """Train the plugins of a dataset of the dataset store (``scagent plugins train
    --reference NAME``).

    The cells, cell types and tissues are the stored dataset's (``scagent memory add``
    recorded its label and tissue columns as ``cell_type`` and ``tissue``; labels that
    matched no ontology term keep their name as class). The plugins go to the dataset's
    own folder (:func:`~scagent.memory.dataset_plugins_path`), where annotating against
    the dataset (``sa.tl.annotate(adata, reference=name)``) finds them; each manifest
    records the dataset content it learnt from, so they are ignored once the dataset is
    replaced. Plugins in that folder trained on an earlier content are removed first.

    Parameters
    ----------
    name
        A dataset name of the store (not ``"atlas"``: see :func:`train_reference_plugins`).
    out
        Another plugin folder to save into (nothing there is removed); pass it as
        ``plugins=`` to :func:`scagent.tl.annotate`.
    tissues, tissue_plugin, borrow, model, config, seed, progress
        As in :func:`train_reference_plugins`. With a single tissue no tissue-assignment
        plugin is trained.

    Returns
    -------
    The saved plugins.

    Raises
    ------
    InputDataError
        When the store has no dataset ``name`` (the message lists the names it has), or
        ``name`` is ``"atlas"``.
    """
    from ..memory import DatasetStore, reference_data
    from ..memory._dataset_plugins import (
        dataset_plugins_path,
        dataset_record,
        remove_dataset_plugins,
        stale_dataset_plugins,
    )

    folder = dataset_plugins_path(name)  # checks the name (not the atlas)
    if out is not None:
        folder = Path(out).expanduser()
    store = DatasetStore()
    try:
        entry = store.entry(name)
        ref = reference_data(name)
    except KeyError as err:
        raise InputDataError(err.args[0]) from None
    if ref.version != entry["reference_version"]:  # replaced between the two reads
        msg = f"Dataset {name!r} changed while it was being read; try again."
        raise InputDataError(msg)
    if out is None and stale_dataset_plugins(name, ref.version):
        logger.warning(
            "Removing the plugins of %r trained on an earlier content of it (%s).", name, folder
        )
        remove_dataset_plugins(name)
    adata = ref.adata
    n_tissues = adata.obs["tissue"].astype(str).nunique()
    if tissue_plugin and n_tissues < 2:
        logger.info("Dataset %r has one tissue: no tissue-assignment plugin.", name)
        tissue_plugin = False
    saved = train_reference_plugins(
        adata,
        PluginRegistry([folder]),
        tissue_key="tissue",
        label_key="cell_type",
        tissues=tissues,
        tissue_plugin=tissue_plugin,
        borrow=borrow,
        model=model,
        config=config,
        seed=seed,
        progress=progress,
        record=dataset_record(entry),
    )
    try:
        now = store.entry(name)["reference_version"]
    except KeyError:
        now = None
    if now != ref.version:
        logger.warning(
            "Dataset %r was replaced or removed during training: the plugins in %s fit its "
            "earlier content and will not be used for it.",
            name,
            folder,
        )
    return saved
