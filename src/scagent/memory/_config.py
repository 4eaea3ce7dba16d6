"""Where the memory lives and how its vectors are indexed: one URI, documented defaults.

The vector memory is a Milvus database behind one URI: by default an embedded Milvus Lite
store in the user's scagent data directory, or any Milvus server or cluster
(``http://host:19530``, optionally with a token) through the same code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .._constants import OBSM_EMBED, OBSM_EMBED_TUNED
from .._settings import settings

__all__ = [
    "ENV_TOKEN",
    "ENV_URI",
    "INDEX",
    "SPACES",
    "IndexParams",
    "Space",
    "is_lite_uri",
    "memory_dir",
    "memory_token",
    "memory_uri",
]

#: Environment variable naming the Milvus URI (a ``.db`` path or ``http://host:19530``).
ENV_URI = "SCAGENT_MILVUS_URI"
#: Environment variable with the Milvus token (``user:password`` or an API key).
ENV_TOKEN = "SCAGENT_MILVUS_TOKEN"


def memory_dir() -> Path:
    """``<sa.settings.data_dir>/memory``: the dataset store, history and Lite store live here."""
    return settings.data_dir / "memory"


def memory_uri() -> str:
    """The Milvus URI scagent's vector memory uses.

    ``$SCAGENT_MILVUS_URI`` when set, else the embedded Milvus Lite store
    ``<sa.settings.data_dir>/memory/milvus.db``. A URI ending in ``.db`` is a Milvus Lite
    store (one process at a time); ``http://host:19530`` (or ``https://``) is a Milvus
    standalone server or cluster, shared by any number of processes.

    Returns
    -------
    The URI (a local path for Milvus Lite).
    """
    env = os.environ.get(ENV_URI, "").strip()
    if env:
        return str(Path(env).expanduser()) if is_lite_uri(env) else env
    return str(memory_dir() / "milvus.db")


def memory_token() -> str:
    """``$SCAGENT_MILVUS_TOKEN`` or ``""`` (no authentication)."""
    return os.environ.get(ENV_TOKEN, "")


def is_lite_uri(uri: str) -> bool:
    """Whether ``uri`` names an embedded Milvus Lite store (a path ending in ``.db``)."""
    return "://" not in uri and uri.endswith(".db")


@dataclass(frozen=True)
class IndexParams:
    """How vectors are indexed and searched.

    Embeddings are L2-normalised (``sa.tl.embed`` and the plugins write unit vectors; the
    memory normalises again on insert and search), so the metric is cosine: Milvus returns
    the similarity and scagent reports the **cosine distance** ``1 - similarity``, in
    ``[0, 2]``. For unit vectors the squared Euclidean distance is twice that.

    Attributes
    ----------
    index_type
        ``IVF_FLAT`` (the paper's index): k-means cells, exact distances within them.
    metric
        ``COSINE``.
    nlist
        k-means cells per index. Milvus builds one index per segment (Milvus Lite: up to
        about 100,000 rows; a server: up to its segment size), so this is per segment.
    nprobe
        Cells scanned per query. 16 of 128 gave recall@10 >= 0.95 on resampled atlas
        embeddings (see ``scagent bench -s memory``); raise it for more recall, lower it for
        speed.

    Notes
    -----
    The cells of each tissue are kept in their own Milvus partition, so a search filtered
    by tissue (every search scagent makes) scans that tissue's index alone.
    """

    index_type: str = "IVF_FLAT"
    metric: str = "COSINE"
    nlist: int = 128
    nprobe: int = 16


#: The default index parameters.
INDEX = IndexParams()


@dataclass(frozen=True)
class Space:
    """One embedding space of the memory (the paper's D_g or D_s).

    Attributes
    ----------
    name
        ``"pretrained"`` or ``"tuned"``.
    collection
        Milvus collection of the cells.
    stats_collection
        Milvus collection of the per-class centroids and distance statistics.
    obsm_key
        The ``.obsm`` key the embeddings come from.
    description
        What the space is.
    """

    name: str
    collection: str
    stats_collection: str
    obsm_key: str
    description: str


#: The two spaces: pretrained encoder (F_g) and tissue-plugin tuned (F_s).
SPACES = {
    "pretrained": Space(
        "pretrained",
        "scagent_pretrained",
        "scagent_pretrained_classes",
        OBSM_EMBED,
        "foundation encoder <cls> embeddings (sa.tl.embed; the paper's F_g)",
    ),
    "tuned": Space(
        "tuned",
        "scagent_tuned",
        "scagent_tuned_classes",
        OBSM_EMBED_TUNED,
        "MoE-LoRA tissue-plugin embeddings (each tissue's plugin; the paper's F_s)",
    ),
}
