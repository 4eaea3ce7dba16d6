"""Wall time and peak resident memory of a block of code."""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Measurement", "measure", "rss_bytes"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size of this process in bytes (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return 0


def _release_free_memory() -> None:
    """Return freed heap memory to the OS, so that a new allocation shows up in the RSS."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


@dataclass
class Measurement:
    """Result of :func:`measure`: seconds and peak RSS above the starting RSS, in MB."""

    seconds: float = 0.0
    peak_mb: float = 0.0


@contextmanager
def measure(interval: float = 0.005):
    """Measure wall time and the peak RSS increase of the ``with`` block.

    Freed heap memory is first returned to the OS (glibc ``malloc_trim``), then a
    background thread samples the RSS every ``interval`` seconds.
    """
    result = Measurement()
    _release_free_memory()
    base = rss_bytes()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes())
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start
        stop.set()
        thread.join()
        peak[0] = max(peak[0], rss_bytes())
        result.peak_mb = (peak[0] - base) / 2**20
