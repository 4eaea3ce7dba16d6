"""A cache of embeddings keyed by the input file's content and the model, so a second
request on the same file skips re-embedding."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from anndata import AnnData

from .._constants import OBSM_EMBED, UNS_KEY
from .._files import atomic_file, file_sha256
from ._config import memory_dir
from ._sqlite import connect, history_path

__all__ = ["CachedEmbedding", "EmbeddingCache", "content_sha256", "embed_cached"]


def content_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, or of a folder's files (names and bytes, sorted), e.g. a
    10x matrix directory."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        msg = f"No such file or directory: {path}"
        raise FileNotFoundError(msg)
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(path)).encode() + b"\0" + file_sha256(p).encode())
    return h.hexdigest()


def _obs_sha(obs_names) -> str:
    return hashlib.sha256("\n".join(map(str, obs_names)).encode()).hexdigest()


@dataclass
class CachedEmbedding:
    """An embedding found in the cache and what ``sa.tl.embed`` recorded about it."""

    embedding: np.ndarray
    info: dict


class EmbeddingCache:
    """Embeddings of input files by (file content sha256, model sha256, ``.obsm`` key).

    The index lives in the history database (SQLite, WAL; safe for several processes),
    the arrays in ``.npy`` files beside it.

    Parameters
    ----------
    path
        The SQLite file (default ``<sa.settings.data_dir>/memory/history.sqlite``).
    folder
        Where the arrays go (default ``<sa.settings.data_dir>/memory/cache/embeddings``).

    Attributes
    ----------
    hits, misses
        Lookups answered from the cache and not, by this object.
    """

    def __init__(
        self, path: str | os.PathLike | None = None, *, folder: str | os.PathLike | None = None
    ) -> None:
        self.path = Path(path) if path is not None else history_path()
        self.folder = Path(folder) if folder is not None else memory_dir() / "cache" / "embeddings"
        self.hits = 0
        self.misses = 0

    def get(
        self, file_sha256: str, model_sha256: str, *, key: str = OBSM_EMBED, obs_names=None
    ) -> CachedEmbedding | None:
        """The cached embedding, or ``None``.

        Parameters
        ----------
        file_sha256, model_sha256
            The input's content hash (:func:`content_sha256`) and the encoder's.
        key
            The ``.obsm`` key the embedding belongs to.
        obs_names
            The cells it must be for (a miss if they differ, e.g. after filtering).

        Returns
        -------
        The embedding and its ``uns['scagent']['embed']`` record, or ``None``.
        """
        with connect(self.path) as con:
            row = con.execute(
                "SELECT path, n_obs, obs_sha256, info FROM embedding_cache"
                " WHERE file_sha256 = ? AND model_sha256 = ? AND key = ?",
                (file_sha256, model_sha256, key),
            ).fetchone()
        found = None
        if row is not None and (obs_names is None or _obs_sha(obs_names) == row[2]):
            try:
                emb = np.load(self.folder / row[0], allow_pickle=False)
            except (OSError, ValueError):
                emb = None
            if emb is not None and emb.shape[0] == row[1]:
                found = CachedEmbedding(emb, json.loads(row[3]) if row[3] else {})
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        with connect(self.path) as con:
            con.execute(
                "UPDATE embedding_cache SET hits = hits + 1, last_used = ?"
                " WHERE file_sha256 = ? AND model_sha256 = ? AND key = ?",
                (datetime.now(UTC).isoformat(), file_sha256, model_sha256, key),
            )
        return found

    def put(
        self,
        file_sha256: str,
        model_sha256: str,
        embedding: np.ndarray,
        *,
        key: str = OBSM_EMBED,
        obs_names=None,
        info: dict | None = None,
    ) -> None:
        """Store an embedding (replacing an older one for the same file, model and key)."""
        embedding = np.ascontiguousarray(embedding, dtype=np.float32)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{file_sha256[:16]}-{model_sha256[:16]}-{key}.npy"
        with atomic_file(self.folder / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, embedding, allow_pickle=False)
        now = datetime.now(UTC).isoformat()
        obs = _obs_sha(obs_names) if obs_names is not None else ""
        with connect(self.path) as con:
            con.execute(
                "INSERT OR REPLACE INTO embedding_cache (file_sha256, model_sha256, key, n_obs,"
                " dim, obs_sha256, path, info, created, last_used)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    file_sha256,
                    model_sha256,
                    key,
                    embedding.shape[0],
                    embedding.shape[1],
                    obs,
                    name,
                    json.dumps(info or {}, default=str),
                    now,
                    now,
                ),
            )


def embed_cached(
    adata: AnnData,
    *,
    source: str | os.PathLike,
    model: str | os.PathLike = "default",
    key_added: str = OBSM_EMBED,
    cache: EmbeddingCache | None = None,
) -> bool:
    """:func:`scagent.tl.embed`, skipped when the same file was embedded by the same model.

    Parameters
    ----------
    adata
        The cells read from ``source`` (as :func:`scagent.tl.embed` takes them).
    source
        The file (or 10x folder) ``adata`` was read from; its content is the cache key.
    model
        The encoder (see :func:`scagent.tl.embed`).
    key_added
        ``.obsm`` key to write.
    cache
        The cache (default: the one in the user's data directory).

    Returns
    -------
    ``True`` when the embedding came from the cache. Writes ``adata.obsm[key_added]`` and
    ``adata.uns['scagent']['embed']`` (with ``cached`` set to the return value).
    """
    from ..models import load_encoder
    from ..tl import embed

    cache = EmbeddingCache() if cache is None else cache
    encoder = load_encoder(model)
    file_sha = content_sha256(source)
    hit = cache.get(file_sha, encoder.sha256, key=key_added, obs_names=adata.obs_names)
    if hit is not None:
        adata.obsm[key_added] = hit.embedding
        adata.uns.setdefault(UNS_KEY, {})["embed"] = {**hit.info, "cached": True}
        return True
    embed(adata, model=encoder, key_added=key_added)
    info = dict(adata.uns[UNS_KEY]["embed"])
    cache.put(
        file_sha,
        encoder.sha256,
        adata.obsm[key_added],
        key=key_added,
        obs_names=adata.obs_names,
        info=info,
    )
    adata.uns[UNS_KEY]["embed"]["cached"] = False
    return False
