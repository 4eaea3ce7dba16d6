"""Errors of the memory module, each saying what is wrong and how to fix it."""

from __future__ import annotations

__all__ = ["MemoryStoreBusy", "MemoryStoreError", "MemoryStoreUnreachable"]


class MemoryStoreError(OSError):
    """The vector memory cannot be used as configured.

    A subclass of :class:`OSError` (like a locked file or a refused connection), so the
    command line prints it as one line. The message names the store and what to change.
    """


class MemoryStoreBusy(MemoryStoreError):
    """Another process holds the embedded (Milvus Lite) store.

    Milvus Lite lets one process at a time open a store; share one memory between
    processes through a Milvus server (``SCAGENT_MILVUS_URI=http://host:19530``).
    """


class MemoryStoreUnreachable(MemoryStoreError):
    """The Milvus server named by the memory URI did not answer."""
