"""Build a reference from a TileDB-SOMA experiment, the format of CELLxGENE Census."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._errors import InputDataError
from .._settings import settings

__all__ = ["from_soma"]

logger = logging.getLogger("scagent")

# harmonised obs column -> candidate SOMA obs columns, first present wins (Census names first)
_OBS_MAP = {
    "tissue": ("tissue_general", "tissue"),
    "cell_type": ("cell_type",),
    "cell_type_ontology_term_id": ("cell_type_ontology_term_id",),
    "donor": ("donor_id", "donor"),
    "technology": ("assay", "technology"),
    "dataset": ("dataset_id", "dataset"),
}
_GENE_COLUMNS = ("feature_name", "gene_symbol", "gene_name")


def _open(uri: str | Any):
    try:
        import tiledbsoma
    except ImportError as err:  # pragma: no cover - depends on the install
        msg = "from_soma needs tiledbsoma: pip install 'scagent[soma]'."
        raise ImportError(msg) from err
    if isinstance(uri, tiledbsoma.Experiment):
        return uri, False
    try:
        return tiledbsoma.Experiment.open(str(uri)), True
    except (tiledbsoma.DoesNotExistError, tiledbsoma.SOMAError) as err:
        msg = f"Could not open a SOMA experiment at {uri!r}: {err}"
        raise InputDataError(msg) from err


def _stratified(obs: pd.DataFrame, keys: list[str], max_cells: int | None, seed: int) -> np.ndarray:
    """soma_joinids with at most ``max_cells`` per combination of ``keys``."""
    if max_cells is None:
        return np.sort(obs["soma_joinid"].to_numpy())
    rng = np.random.default_rng(seed)
    picked = []
    for _, grp in obs.groupby(keys, observed=True, sort=True):
        ids = grp["soma_joinid"].to_numpy()
        if len(ids) > max_cells:
            ids = rng.choice(ids, size=max_cells, replace=False)
        picked.append(ids)
    return np.sort(np.concatenate(picked)) if picked else np.array([], dtype=np.int64)


def from_soma(
    uri: str | Any,
    *,
    obs_query: str | None = "is_primary_data == True",
    max_cells_per_type: int | None = 1000,
    measurement: str = "RNA",
    X_name: str = "raw",
    seed: int | None = None,
) -> AnnData:
    """Build a reference from a TileDB-SOMA experiment, e.g. CELLxGENE Census.

    Cells matching ``obs_query`` are sampled per cell type and tissue (at most
    ``max_cells_per_type`` of each combination, as the scAgent paper samples Census), then
    their counts are read. ``obs`` is harmonised to the columns of
    :func:`~scagent.datasets.reference_atlas`.

    To use CELLxGENE Census (``pip install cellxgene-census``)::

        import cellxgene_census
        census = cellxgene_census.open_soma(census_version="stable")
        ref = sa.datasets.from_soma(
            census["census_data"]["homo_sapiens"],
            obs_query="is_primary_data == True and tissue_general in ['lung', 'blood']",
            max_cells_per_type=500,
        )

    or pass the experiment's URI (an ``s3://`` path or a local copy) as ``uri``.

    Parameters
    ----------
    uri
        URI of a SOMA experiment, or an opened ``tiledbsoma.Experiment``.
    obs_query
        SOMA ``value_filter`` on ``obs``. The default keeps Census primary data; it is
        dropped automatically when the experiment has no ``is_primary_data`` column.
    max_cells_per_type
        Most cells kept per (cell type, tissue); ``None`` keeps all.
    measurement
        Measurement holding the expression data.
    X_name
        Layer of ``X`` to read (Census stores counts as ``"raw"``).
    seed
        Seed for the sampling; defaults to ``sa.settings.seed``.

    Returns
    -------
    Counts in ``X``, gene symbols as ``var_names`` (``var['ensembl_id']`` where the
    experiment has ``feature_id``) and ``obs`` with ``tissue``, ``cell_type``,
    ``cell_type_ontology_term_id``, ``donor``, ``technology``, ``dataset`` plus the
    experiment's own columns.
    """
    import tiledbsoma

    exp, opened = _open(uri)
    try:
        obs_schema = exp.obs.schema.names
        if obs_query == "is_primary_data == True" and "is_primary_data" not in obs_schema:
            obs_query = None
        for need in ("cell_type",):
            if need not in obs_schema:
                msg = f"The SOMA experiment's obs has no {need!r} column (it has {obs_schema})."
                raise InputDataError(msg)
        if measurement not in exp.ms:
            msg = f"No measurement {measurement!r}; the experiment has {list(exp.ms.keys())}."
            raise InputDataError(msg)
        if X_name not in exp.ms[measurement].X:
            msg = f"No X layer {X_name!r}; available: {list(exp.ms[measurement].X.keys())}."
            raise InputDataError(msg)
        tissue_col = next((c for c in _OBS_MAP["tissue"] if c in obs_schema), None)
        keys = ["cell_type"] + ([tissue_col] if tissue_col else [])
        try:
            obs = (
                exp.obs.read(value_filter=obs_query, column_names=["soma_joinid", *keys])
                .concat()
                .to_pandas()
            )
        except (tiledbsoma.SOMAError, ValueError) as err:
            msg = f"obs_query {obs_query!r} is not a valid SOMA value filter: {err}"
            raise InputDataError(msg) from err
        if obs.empty:
            msg = f"No cells in {uri!r} match obs_query={obs_query!r}."
            raise InputDataError(msg)
        joinids = _stratified(
            obs, keys, max_cells_per_type, settings.seed if seed is None else seed
        )
        logger.info("SOMA: %d of %d matching cells sampled.", len(joinids), len(obs))
        query = exp.axis_query(measurement, obs_query=tiledbsoma.AxisQuery(coords=(joinids,)))
        adata = query.to_anndata(X_name=X_name)
    finally:
        if opened:
            exp.close()
    return _harmonise(adata)


def _harmonise(adata: AnnData) -> AnnData:
    for target, sources in _OBS_MAP.items():
        src = next((c for c in sources if c in adata.obs.columns), None)
        if src is not None and src != target:
            adata.obs[target] = adata.obs[src].astype(str).astype("category")
        elif src is None:
            adata.obs[target] = "unknown"
    gene_col = next((c for c in _GENE_COLUMNS if c in adata.var.columns), None)
    if gene_col is not None:
        if "feature_id" in adata.var.columns:
            adata.var["ensembl_id"] = adata.var["feature_id"].astype(str).to_numpy()
        adata.var_names = pd.Index(adata.var[gene_col].astype(str).to_numpy())
        adata.var_names_make_unique()
    adata.obs_names = adata.obs_names.astype(str)
    return adata
