"""What the ``scagent memory`` commands do, as functions returning text for a person."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .._errors import InputDataError
from ._config import SPACES

__all__ = [
    "add_dataset",
    "build",
    "describe_memory",
    "list_datasets",
    "remove_dataset",
    "search_file",
]


def _mb(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.1f} MB"


def _entry(store, name: str) -> dict:
    try:
        return store.entry(name)
    except KeyError as err:
        raise InputDataError(err.args[0]) from None


def build(
    *,
    names: list[str] | None = None,
    source: str | os.PathLike | None = None,
    cell_type_key: str | None = None,
    tissue_key: str | None = None,
    tissue: str | None = None,
    name: str | None = None,
    fresh: bool = False,
    stats_only: bool = False,
    model: str = "default",
    uri: str | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Embed reference cells in both spaces and store them (``scagent memory build``).

    Each dataset's cells replace what the memory held for that dataset.

    Parameters
    ----------
    names
        Datasets of the dataset store (default: all of them, the atlas first).
    source, cell_type_key, tissue_key, tissue, name
        Instead, a labelled file (any format :func:`scagent.read` takes), its label and
        tissue columns (or one tissue), and the dataset name to store it under (default:
        the file name's stem). The file itself is not added to the dataset store.
    fresh
        Empty both spaces first.
    stats_only
        Only recompute the class statistics from the stored rows.
    model
        The encoder.
    uri
        The Milvus URI (default :func:`~scagent.memory.memory_uri`).
    echo
        Where progress lines go.

    Returns
    -------
    Per dataset: rows stored per space and seconds.
    """
    from ..models import load_encoder
    from ._build import embed_both, store_cells
    from ._cache import EmbeddingCache, content_sha256
    from ._datasets import DatasetStore
    from ._harmonise import harmonise_reference
    from ._reference import reference_data
    from ._vectors import VectorMemory

    with VectorMemory(uri) as memory:
        if fresh:
            memory.drop()
        if stats_only:
            n = memory.refresh_stats()
            echo(f"recomputed the statistics of {n} classes")
            return {}
        encoder = load_encoder(model)
        cache = EmbeddingCache()
        if source is not None:
            from ..io import read

            if cell_type_key is None:
                msg = "--from needs --cell-type-key (and --tissue-key or --tissue)."
                raise InputDataError(msg)
            path = Path(source)
            dataset = name or path.name.split(".")[0]
            adata, report = harmonise_reference(
                read(path),
                name=dataset,
                cell_type_key=cell_type_key,
                tissue_key=tissue_key,
                tissue=tissue,
            )
            echo(report.text())
            jobs = [(dataset, adata, content_sha256(path))]
        else:
            store = DatasetStore()
            jobs = []
            for n in names or store.names():
                entry = _entry(store, n)
                jobs.append((n, reference_data(n).adata, entry["sha256"]))
        done = {}
        for dataset, adata, sha in jobs:
            hit = cache.get(sha, encoder.sha256, obs_names=adata.obs_names)
            emb = embed_both(
                adata,
                adata.obs["tissue"].astype(str).to_numpy(),
                model=encoder,
                pretrained=None if hit is None else hit.embedding,
            )
            if hit is None:
                cache.put(sha, encoder.sha256, emb.pretrained, obs_names=adata.obs_names)
            counts = store_cells(memory, adata, emb, dataset=dataset)
            done[dataset] = {
                **counts,
                "seconds": emb.seconds,
                "cached": hit is not None,
                "skipped": emb.skipped,
            }
            took = "cached" if hit else f"{emb.seconds['pretrained']:.0f} s"
            echo(
                f"{dataset}: {counts['pretrained']:,} cells in the pretrained space "
                f"({took}), "
                f"{counts['tuned']:,} in the tuned space ({emb.seconds['tuned']:.0f} s)"
                + (f"; replaced {counts['removed']:,} rows" if counts["removed"] else "")
            )
            for tissue, why in emb.skipped.items():
                echo(f"  {tissue}: not in the tuned space ({why})")
    return done


def describe_memory(*, uri: str | None = None) -> str:
    """``scagent memory info``: location, size, index, rows per space, tissue and type."""
    from ._datasets import DatasetStore
    from ._vectors import VectorMemory

    with VectorMemory(uri) as memory:
        info = memory.describe()
        stats = {s: memory.class_stats(s).table for s in SPACES}
    idx = info["index"]
    size = f", {_mb(info['size_bytes'])}" if info["size_bytes"] is not None else ""
    lines = [
        f"memory: {info['uri']} ({info['kind']}{size})",
        f"index: {idx['index_type']}, metric {idx['metric']} (distances are cosine "
        f"distances, 1 - similarity), nlist {idx['nlist']}, nprobe {idx['nprobe']}",
        "",
        f"{'space':<12}{'rows':>10}{'dim':>6}{'classes':>9}  statistics",
    ]
    for name, s in info["spaces"].items():
        state = "in step" if s["in_step"] else "OUT OF STEP: run scagent memory build --stats-only"
        lines.append(f"{name:<12}{s['rows']:>10,}{s['dim'] or '-':>6}{s['classes']:>9}  {state}")
    frames = []
    for space, table in stats.items():
        if len(table):
            frames.append(
                table.groupby(["tissue", "cell_type"])["n"].sum().rename(space).to_frame()
            )
    if frames:
        counts = pd.concat(frames, axis=1).fillna(0).astype(int).reset_index()
        lines += ["", "cells per tissue and cell type:", counts.to_string(index=False)]
        per_ds: dict[str, dict[str, int]] = {}
        for space, table in stats.items():
            for d in table.get("datasets", []):
                for k, v in d.items():
                    per_ds.setdefault(k, {}).setdefault(space, 0)
                    per_ds[k][space] += v
        lines += ["", "datasets in the memory:"]
        lines += [
            f"  {k}: " + ", ".join(f"{v:,} {s}" for s, v in sorted(d.items()))
            for k, d in sorted(per_ds.items())
        ]
    else:
        lines += ["", "the memory is empty: run scagent memory build"]
    store = DatasetStore()
    lines += [
        "",
        f"dataset store: {store.root} ({len(store.names())} datasets; scagent memory list)",
    ]
    return "\n".join(lines)


def search_file(
    path: str | os.PathLike,
    *,
    k: int = 10,
    tissue: str | None = None,
    out: str | os.PathLike | None = None,
    show: int = 20,
    uri: str | None = None,
) -> str:
    """``scagent memory search``: the nearest known cells of each cell of a file."""
    from ..io import read
    from ._build import search_cells
    from ._cache import embed_cached
    from ._vectors import VectorMemory

    adata = read(path)
    cached = embed_cached(adata, source=path)
    with VectorMemory(uri) as memory:
        found, tissues = search_cells(memory, adata, k=k, tissue=tissue)
    ids = adata.obs_names.astype(str).to_numpy()
    pre = found["pretrained"].summary(ids)
    tun = found["tuned"].summary(ids)
    table = pd.DataFrame(
        {
            "cell": ids,
            "pretrained: nearest type": pre["nearest_type"],
            "share": pre["share"],
            "distance": pre["nearest_distance"],
            "tuned: tissue": tissues,
            "tuned: nearest type": tun["nearest_type"],
            "share ": tun["share"],
            "distance ": tun["nearest_distance"],
        }
    )
    lines = [
        f"{path}: {adata.n_obs:,} cells; {k} nearest stored cells per cell and space "
        f"(cosine distance; embeddings {'from the cache' if cached else 'computed'})",
        "",
        table.head(show).to_string(index=False, float_format="{:.3f}".format),
    ]
    if adata.n_obs > show:
        lines.append(f"... {adata.n_obs - show:,} more cells")
    summary = (
        pd.DataFrame({"pretrained": pre["nearest_type"], "tuned": tun["nearest_type"]})
        .apply(lambda c: c.replace("", "(none)").value_counts())
        .fillna(0)
        .astype(int)
        .sort_values("pretrained", ascending=False)
    )
    lines += ["", "majority type of the neighbours, cells per space:", summary.to_string()]
    if out is not None:
        long = pd.concat([found[s].to_frame(ids) for s in SPACES], ignore_index=True)
        out = Path(out)
        long.to_csv(out, sep="\t" if out.suffix in (".tsv", ".txt") else ",", index=False)
        lines += ["", f"wrote {len(long):,} neighbours to {out}"]
    return "\n".join(lines)


def add_dataset(
    path: str | os.PathLike,
    *,
    cell_type_key: str,
    tissue_key: str | None = None,
    tissue: str | None = None,
    name: str | None = None,
    replace: bool = False,
) -> str:
    """``scagent memory add``: store a labelled dataset as a reference."""
    from ..io import read
    from ._datasets import DatasetStore
    from ._harmonise import harmonise_reference

    path = Path(path)
    name = name or path.name.split(".")[0]
    adata, report = harmonise_reference(
        read(path), name=name, cell_type_key=cell_type_key, tissue_key=tissue_key, tissue=tissue
    )
    entry = DatasetStore().add(
        adata, name=name, source=str(path.resolve()), report=report, replace=replace
    )
    tissues = ", ".join(f"{t} ({n:,})" for t, n in entry["cells_per_tissue"].items())
    return "\n".join(
        [
            f"added {name!r} (version {entry['version']}): {entry['n_cells']:,} cells, "
            f"{entry['n_genes']:,} genes; tissues: {tissues}",
            report.text(),
            f"annotate against it: scagent annotate FILE --reference {name}; train its "
            f"plugins: scagent plugins train --reference {name}; put its cells in the "
            f"vector memory: scagent memory build --reference {name}",
        ]
    )


def remove_dataset(name: str, *, uri: str | None = None) -> str:
    """``scagent memory remove``: take a dataset out of the store and the vector memory,
    and delete the plugins trained on it."""
    from ._dataset_plugins import remove_dataset_plugins
    from ._datasets import DatasetStore
    from ._vectors import VectorMemory

    store = DatasetStore()
    _entry(store, name)
    with VectorMemory(uri) as memory:  # opened first: a busy store changes nothing
        entry = store.remove(name)
        rows = memory.delete(dataset=name)
    try:
        folder = remove_dataset_plugins(name)
        plugins = f"; deleted its plugins ({folder})" if folder is not None else ""
    except OSError as err:  # they would only fit the very same content added again
        plugins = f"; could not delete its plugins ({err}): delete them by hand"
    return (
        f"removed {name!r} ({entry['n_cells']:,} cells) from the dataset store and "
        f"{rows:,} rows from the vector memory{plugins}"
    )


def list_datasets() -> str:
    """``scagent memory list``: the datasets of the store."""
    from ._datasets import DatasetStore

    store = DatasetStore()
    table = store.table()
    return f"dataset store: {store.root}\n\n" + table.to_string(index=False)
