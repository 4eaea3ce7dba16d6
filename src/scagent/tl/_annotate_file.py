"""Annotating a file too large for memory: backed reading in chunks, crash-safe writing."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from anndata.io import read_elem, write_elem

from .._constants import OBSM_EMBED_TUNED, UNS_KEY
from .._errors import InputDataError
from ..io import read
from ..io._backed import BackedH5ad
from ..models import load_encoder, model_input
from ._annotate import (
    AnnotationResult,
    annotate,
    annotate_matrix,
    resolve_registry,
    run_record,
    vote,
    write_result,
)

__all__ = ["annotate_file"]

logger = logging.getLogger("scagent")


def _concat(parts: list[AnnotationResult]) -> AnnotationResult:
    plugins: dict = {}
    for p in parts:
        plugins.update(p.plugins)
    return AnnotationResult(
        *[np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS], plugins=plugins
    )


_FIELDS = ("tissue", "tissue_confidence", "cell_type", "ontology_id", "confidence", "embedding")


def annotate_file(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    tissue: str | None = None,
    plugins=None,
    model: str | os.PathLike = "default",
    groupby: str | None = None,
    majority_voting: bool = False,
    gene_column: str | None = None,
    species: str | None = None,
    chunk_size: int = 10_000,
) -> pd.DataFrame:
    """Annotate a file and write an annotated ``.h5ad``, streaming ``.h5ad`` input.

    An ``.h5ad`` input is checked as :func:`scagent.read` checks (without loading its
    matrix), then opened backed and annotated ``chunk_size`` cells at a time, so memory stays
    flat however many cells it holds; the output is a copy of the input file with the
    annotation columns, ``.obsm['X_scagent_tuned']`` and ``.uns['scagent']`` added. Other
    formats (10x, loom, text), and any input with ``species``, are read whole with
    :func:`scagent.read`. The output appears only when complete (written aside, then renamed).

    Parameters
    ----------
    path
        Input file (anything :func:`scagent.read` reads).
    out
        Output ``.h5ad``.
    tissue, plugins, model, groupby, majority_voting
        As in :func:`scagent.tl.annotate`.
    gene_column, species
        As in :func:`scagent.read`: the ``.var`` column of gene ids, and the species to keep
        of a file that mixes human and mouse (the output then holds that species' cells).
    chunk_size
        Cells per chunk for ``.h5ad`` input.

    Returns
    -------
    Summary: one row per (tissue, cell type) with cell counts and mean confidence.

    Raises
    ------
    FileNotFoundError
        The input does not exist.
    InputDataError
        The input is unreadable or unusable (see :func:`scagent.read`), or the output path
        is not a new ``.h5ad``.
    """
    path, out = Path(path).expanduser(), Path(out).expanduser()
    if not path.exists():
        msg = f"Input file {str(path)!r} does not exist."
        raise FileNotFoundError(msg)
    if out.suffix != ".h5ad":
        msg = f"The output must be an .h5ad file, got {str(out)!r}."
        raise InputDataError(msg)
    if out.resolve() == path.resolve():
        msg = "The output must not overwrite the input file; choose another -o path."
        raise InputDataError(msg)
    if chunk_size < 1:
        msg = f"chunk_size must be >= 1, got {chunk_size}."
        raise InputDataError(msg)
    out.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() != ".h5ad" or species is not None:
        adata = read(path, gene_column=gene_column, species=species)
        annotate(
            adata,
            tissue=tissue,
            plugins=plugins,
            model=model,
            groupby=groupby,
            majority_voting=majority_voting,
        )
        _write_whole(adata, out)
        return summary(adata.obs)
    with BackedH5ad(path, gene_column=gene_column) as source:
        if groupby is not None and groupby not in source.adata.obs:
            msg = f"groupby={groupby!r} is not an .obs column of {path.name}."
            raise InputDataError(msg)
        return _stream(source, out, tissue, plugins, model, groupby, majority_voting, chunk_size)


def _write_whole(adata: ad.AnnData, out: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".h5ad", dir=out.parent)
    os.close(fd)
    try:
        adata.write_h5ad(tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stream(source: BackedH5ad, out, tissue, plugins, model, groupby, majority_voting, chunk_size):
    path = source.path
    encoder = load_encoder(model)
    registry = resolve_registry(plugins)
    parts, n_in = [], 0
    for start in range(0, source.n_obs, chunk_size):
        chunk = source.chunk(start, min(start + chunk_size, source.n_obs))
        X, ids, n_in = model_input(chunk, encoder)
        parts.append(annotate_matrix(X, ids, encoder, registry, tissue=tissue))
        logger.info("Annotated %d / %d cells.", start + chunk.n_obs, source.n_obs)
    obs = source.adata.obs.copy()
    source.close()
    res = _concat(parts)
    holder = ad.AnnData(obs=obs)
    write_result(holder, res)
    holder.uns[UNS_KEY] = {
        "annotate": run_record(
            encoder,
            registry,
            res,
            tissue=tissue,
            n_genes_in_vocab=n_in,
            streamed_chunk_size=chunk_size,
        )
    }
    if groupby is not None or majority_voting:
        vote(holder, groupby=groupby)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".h5ad", dir=out.parent)
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+") as f:
            del f["obs"]
            write_elem(f, "obs", holder.obs)
            if "obsm" not in f:
                write_elem(f, "obsm", {})
            if OBSM_EMBED_TUNED in f["obsm"]:
                del f["obsm"][OBSM_EMBED_TUNED]
            write_elem(f["obsm"], OBSM_EMBED_TUNED, holder.obsm[OBSM_EMBED_TUNED])
            uns = read_elem(f["uns"][UNS_KEY]) if "uns" in f and UNS_KEY in f["uns"] else {}
            uns.update(holder.uns[UNS_KEY])
            if "uns" not in f:
                write_elem(f, "uns", {})
            if UNS_KEY in f["uns"]:
                del f["uns"][UNS_KEY]
            write_elem(f["uns"], UNS_KEY, uns)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return summary(holder.obs)


def summary(obs: pd.DataFrame) -> pd.DataFrame:
    """Cells and mean confidence per (tissue, cell type), most frequent first."""
    from ._annotate import OBS_CONF, OBS_TISSUE, OBS_TYPE

    table = (
        obs.groupby([OBS_TISSUE, OBS_TYPE], observed=True)[OBS_CONF]
        .agg(cells="size", mean_confidence="mean")
        .reset_index()
        .rename(columns={OBS_TISSUE: "tissue", OBS_TYPE: "cell_type"})
        .sort_values("cells", ascending=False, ignore_index=True)
    )
    return table
