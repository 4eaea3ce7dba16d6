"""Memory: reference datasets, embeddings in two spaces (Milvus) and the system history.

The paper's memory module (sections 2.1 and 4.1.3):

* :class:`VectorMemory`: the pretrained (F_g) and tuned (F_s) embedding spaces in one
  Milvus database, an embedded Milvus Lite store by default or any Milvus server
  (:func:`memory_uri`); batched inserts, filtered top-k search, per-class statistics.
* :class:`DatasetStore` and :func:`reference_data`: the reference datasets (the bundled
  atlas first, then the user's own, ``scagent memory add``), updated atomically, and
  the plugins trained on a stored dataset (:func:`dataset_plugins`).
* :class:`History` and :class:`EmbeddingCache`: the query log, tool traces and cached
  embeddings, in SQLite.

Importing this package loads neither pymilvus nor torch.
"""

from __future__ import annotations

from ._cache import CachedEmbedding, EmbeddingCache, content_sha256, embed_cached
from ._config import (
    ENV_TOKEN,
    ENV_URI,
    INDEX,
    SPACES,
    IndexParams,
    Space,
    memory_dir,
    memory_token,
    memory_uri,
)
from ._dataset_plugins import dataset_plugins, dataset_plugins_path, remove_dataset_plugins
from ._datasets import ATLAS, DatasetStore
from ._errors import MemoryStoreBusy, MemoryStoreError, MemoryStoreUnreachable
from ._harmonise import LabelReport, harmonise_reference
from ._history import History, Trace
from ._neighbours import Neighbours
from ._reference import ReferenceData, reference_data
from ._stats import ClassStats
from ._vectors import VectorMemory

__all__ = [
    "ATLAS",
    "ENV_TOKEN",
    "ENV_URI",
    "INDEX",
    "SPACES",
    "CachedEmbedding",
    "ClassStats",
    "DatasetStore",
    "EmbeddingCache",
    "History",
    "IndexParams",
    "LabelReport",
    "MemoryStoreBusy",
    "MemoryStoreError",
    "MemoryStoreUnreachable",
    "Neighbours",
    "ReferenceData",
    "Space",
    "Trace",
    "VectorMemory",
    "content_sha256",
    "dataset_plugins",
    "dataset_plugins_path",
    "embed_cached",
    "harmonise_reference",
    "memory_dir",
    "memory_token",
    "memory_uri",
    "reference_data",
    "remove_dataset_plugins",
]
