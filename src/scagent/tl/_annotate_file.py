"""Annotating a file too large for memory: backed reading in chunks, crash-safe writing."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from anndata.io import read_elem, write_elem

from .._constants import (
    OBS_CLUSTER,
    OBS_CONF,
    OBS_TISSUE,
    OBS_TYPE,
    OBSM_EMBED_TUNED,
    OBSM_PROBS,
    UNS_KEY,
)
from .._errors import InputDataError
from .._files import atomic_file
from ..experts import EXPERTS
from ..io import read
from ..io._backed import BackedH5ad
from ..pp import prepare
from ._annotate import annotate, annotate_prepared, vote, write_result

__all__ = ["annotate_file"]

logger = logging.getLogger("scagent")

#: Cells sampled across a streamed file to decide its tissue once for every chunk.
TISSUE_SAMPLE = 5000


def annotate_file(
    path: str | os.PathLike,
    out: str | os.PathLike,
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
    tissue, reference, plugins, model, experts, groupby, majority_voting, novelty, build_memory
        As in :func:`scagent.tl.annotate` (novelty is judged per chunk). A streamed
        file's tissue, when not given, is decided once on up to 5,000 cells sampled
        across it and used for every chunk (or decided per chunk when no tissue fits the
        sample).
    gene_column, species
        As in :func:`scagent.read`: the ``.var`` column of gene ids, and the species to keep
        of a file that mixes human and mouse (the output then holds that species' cells).
    chunk_size
        Cells per chunk for ``.h5ad`` input.

    Returns
    -------
    Summary: one row per (tissue, cell type) with cell counts and mean confidence; its
    ``attrs["novelty_note"]`` says what evidence novelty detection lacked (``""``: none).

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
            reference=reference,
            plugins=plugins,
            model=model,
            experts=experts,
            groupby=groupby,
            majority_voting=majority_voting,
            novelty=novelty,
            build_memory=build_memory,
        )
        _write_whole(adata, out)
        return summary(adata.obs, adata.uns.get(UNS_KEY, {}).get("novelty"))
    with BackedH5ad(path, gene_column=gene_column) as source:
        if groupby is not None and groupby not in source.adata.obs:
            msg = f"groupby={groupby!r} is not an .obs column of {path.name}."
            raise InputDataError(msg)
        kw = {"reference": reference, "plugins": plugins, "model": model, "experts": experts}
        return _stream(
            source,
            out,
            tissue,
            kw,
            groupby,
            majority_voting,
            novelty,
            chunk_size,
            build_memory=build_memory,
        )


def _write_whole(adata: ad.AnnData, out: Path) -> None:
    with atomic_file(out, suffix=".h5ad") as tmp:
        adata.write_h5ad(tmp)


def _decide_tissue(source: BackedH5ad, kw: dict) -> tuple[str | None, dict]:
    """The file's tissue, decided once on cells sampled across it (``None``: per chunk)."""
    sample = prepare(source.sample(TISSUE_SAMPLE), copy=True)
    cheap = tuple(e for e in kw["experts"] if e != "plugin")
    res = annotate_prepared(sample, **{**kw, "experts": cheap})
    decision = res.record["tissue"]
    tissue = decision["decision"] if decision["how"] == "dataset" else None
    return tissue or None, {"sample_cells": sample.n_obs, **decision}


def _novel(chunk, res, kw: dict, *, build_memory: bool):
    """The chunk's annotation with the novelty columns (``detect_novel`` on the chunk)."""
    from ._detect_novel import detect_novel

    write_result(chunk, res)
    detect_novel(
        chunk,
        reference=kw["reference"],
        plugins=kw["plugins"],
        model=kw["model"],
        build_memory=build_memory,
    )
    res.record["novelty"] = chunk.uns[UNS_KEY]["novelty"]
    res.record["novel_groups"] = chunk.uns[UNS_KEY]["novel_groups"]
    return chunk.obs[[c for c in chunk.obs.columns if c.startswith("scagent_")]].copy()


def _stream(
    source: BackedH5ad,
    out,
    tissue,
    kw,
    groupby,
    majority_voting,
    novelty,
    chunk_size,
    *,
    build_memory: bool,
):
    path = source.path
    kw = {**kw, "progress": False}
    sampled = None
    if tissue is None and source.n_obs > chunk_size:
        tissue, sampled = _decide_tissue(source, kw)
    obs_parts, probs, tuned, records = [], [], [], []
    for k, start in enumerate(range(0, source.n_obs, chunk_size)):
        chunk = prepare(source.chunk(start, min(start + chunk_size, source.n_obs)), copy=True)
        groups = groupby if groupby in chunk.obs else None
        res = annotate_prepared(chunk, tissue=tissue, groupby=groups, **kw)
        part = _novel(chunk, res, kw, build_memory=build_memory) if novelty else res.obs.copy()
        part[OBS_CLUSTER] = [f"{k}:{c}" for c in part[OBS_CLUSTER].astype(str)]
        if majority_voting and groupby is None:
            voted = ad.AnnData(obs=part)
            vote(voted, pcs=res.gathered.structure.pcs)
            part = voted.obs
            res.record["vote"] = voted.uns[UNS_KEY]["annotate"]["vote"]
        obs_parts.append(part)
        probs.append(res.probs)
        tuned.append(res.tuned if res.tuned is not None else None)
        res.record["chunk"] = {"index": k, "start": start, "cells": chunk.n_obs}
        records.append(res.record)
        logger.info("Annotated %d / %d cells.", start + chunk.n_obs, source.n_obs)
    obs = source.adata.obs.copy()
    source.close()
    annotations = pd.concat(obs_parts)
    for col in annotations.columns:
        obs[col] = (
            pd.Categorical(annotations[col].astype(str))
            if isinstance(annotations[col].dtype, pd.CategoricalDtype)
            else annotations[col].to_numpy()
        )
    holder = ad.AnnData(obs=obs)
    if majority_voting and groupby is not None:
        vote(holder, groupby=groupby)
    record = dict(records[0])
    record["streamed"] = {
        "chunk_size": chunk_size,
        "tissue_sample": sampled or {},
        "chunks": {
            str(r["chunk"]["index"]): {
                "chunk": r["chunk"],
                "tissue": r["tissue"],
                "clusters": r["clusters"],
            }
            for r in records
        },
    }
    record.pop("chunk", None)
    obsm = {OBSM_PROBS: np.vstack(probs)}
    if all(t is not None for t in tuned):
        obsm[OBSM_EMBED_TUNED] = np.nan_to_num(np.vstack(tuned))
    if UNS_KEY in holder.uns:
        record["vote"] = holder.uns[UNS_KEY]["annotate"]["vote"]
    uns_extra = {"annotate": record}
    with atomic_file(out, suffix=".h5ad") as tmp:
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+") as f:
            del f["obs"]
            write_elem(f, "obs", holder.obs)
            if "obsm" not in f:
                write_elem(f, "obsm", {})
            for key, value in obsm.items():
                if key in f["obsm"]:
                    del f["obsm"][key]
                write_elem(f["obsm"], key, value)
            uns = read_elem(f["uns"][UNS_KEY]) if "uns" in f and UNS_KEY in f["uns"] else {}
            uns.update(uns_extra)
            if "uns" not in f:
                write_elem(f, "uns", {})
            if UNS_KEY in f["uns"]:
                del f["uns"][UNS_KEY]
            write_elem(f["uns"], UNS_KEY, uns)
    return summary(holder.obs, records[0].get("novelty"))


def summary(obs: pd.DataFrame, novelty: dict | None = None) -> pd.DataFrame:
    """Cells and mean confidence per (tissue, cell type), most frequent first, with what
    novelty detection lacked (``novelty``: its ``.uns`` record) in ``attrs["novelty_note"]``."""
    table = (
        obs.groupby([OBS_TISSUE, OBS_TYPE], observed=True)[OBS_CONF]
        .agg(cells="size", mean_confidence="mean")
        .reset_index()
        .rename(columns={OBS_TISSUE: "tissue", OBS_TYPE: "cell_type"})
        .sort_values("cells", ascending=False, ignore_index=True)
    )
    table.attrs["novelty_note"] = str((novelty or {}).get("note", ""))
    return table
