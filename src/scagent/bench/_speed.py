"""Speed and scale: end-to-end annotation, the reference expert's first call, streaming."""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from ..datasets import reference_atlas
from ..experts import fit_reference_model
from ..tl import annotate, detect_novel, embed
from ._measure import measure
from ._report import Section

__all__ = ["resampled_counts", "speed_suite"]

logger = logging.getLogger("scagent")

SPEED_CELLS = 10_000
STREAM_CELLS = 200_000
#: Target of issue 9: end to end with a cached reference expert.
TARGET_CELLS_PER_S = 250


def resampled_counts(n: int, *, seed: int, source: AnnData | None = None) -> AnnData:
    """``n`` real atlas cells drawn with replacement (raw counts, all genes)."""
    atlas = reference_atlas() if source is None else source
    rng = np.random.default_rng(seed)
    pos = rng.integers(0, atlas.n_obs, n)
    obs = atlas.obs.iloc[pos].copy()
    obs["source_cell"] = atlas.obs_names[pos]
    obs.index = [f"cell{i}" for i in range(n)]
    out = AnnData(X=sp.csr_matrix(atlas.X[pos], dtype=np.float32), obs=obs, var=atlas.var.copy())
    return out


def _annotate_rows(n: int, seed: int) -> list[dict]:
    cells = resampled_counts(n, seed=seed)
    cells.obs = cells.obs[["source_cell"]]
    annotate(cells[:200].copy(), progress=False)  # load models, fit the panel's reference expert
    runs = [
        ("sa.tl.embed (pretrained encoder only)", lambda a: embed(a)),
        (
            "sa.tl.annotate (default: 3 experts, tissue decided, novelty)",
            lambda a: annotate(a, progress=False),
        ),
        (
            "sa.tl.annotate: 3 experts, tissue decided, novelty=False",
            lambda a: annotate(a, novelty=False, progress=False),
        ),
        (
            "sa.tl.annotate: 3 experts, tissue='blood', novelty=False",
            lambda a: annotate(a, tissue="blood", novelty=False, progress=False),
        ),
        (
            "sa.tl.annotate: reference + markers experts, novelty=False",
            lambda a: annotate(a, experts=("reference", "markers"), novelty=False, progress=False),
        ),
        ("sa.tl.detect_novel on the annotated cells (statistical judge)", None),
    ]
    rows, base, annotated = [], None, None
    for name, run in runs:
        data = cells.copy() if run is not None else annotated
        with measure() as m:
            if run is None:
                detect_novel(data, build_memory=False)
            else:
                run(data)
        if "novelty=False" in name and annotated is None:
            annotated = data
        rate = n / m.seconds
        base = base or rate
        row = {
            "step": name,
            "cells": n,
            "seconds": m.seconds,
            "cells/s": rate,
            "target cells/s": TARGET_CELLS_PER_S if "annotate" in name else float("nan"),
            "x embed time": base / rate,
            "peak MB": m.peak_mb,
        }
        if "annotate" in name:
            secs = data.uns["scagent"]["annotate"]["seconds"]
            row["breakdown (s)"] = ", ".join(f"{k} {v:.1f}" for k, v in secs.items())
        if run is None or "novelty)" in name:
            nov = data.uns["scagent"]["novelty"]
            row["breakdown (s)"] = (
                f"{nov['n_candidate_groups']} candidate groups, {nov['llm_calls']} LLM calls, "
                f"{nov['n_novel_cells']} cells called novel"
            )
        rows.append(row)
    return rows


def _first_call_rows(seed: int, quick: bool) -> list[dict]:
    """Fitting the reference expert for a new gene panel, for references of growing size."""
    atlas = reference_atlas()
    rng = np.random.default_rng(seed)
    panel = np.sort(rng.choice(atlas.var_names[atlas.var["measured_in_kang2018"]], 2000, False))
    sizes = [("bundled atlas", atlas)]
    for n in (10_000,) if quick else (10_000, 100_000):
        sizes.append((f"{n:,} cells resampled from it", resampled_counts(n, seed=seed)))
    rows = []
    for name, ref in sizes:
        with measure() as m:
            model = fit_reference_model(ref, panel, seed=seed)
        rows.append(
            {
                "reference": name,
                "reference cells": ref.n_obs,
                "panel genes": len(panel),
                "cells fitted (balanced, <= 500 per class)": model.info["n_cells"],
                "seconds": m.seconds,
                "peak MB": m.peak_mb,
            }
        )
    return rows


def _stream_row(n: int, seed: int) -> dict:
    """Annotate an ``n``-cell .h5ad with ``scagent annotate`` in a fresh process."""
    import time

    with tempfile.TemporaryDirectory(prefix="scagent-stream-") as tmp:
        src, out = Path(tmp) / "cells.h5ad", Path(tmp) / "annotated.h5ad"
        cells = resampled_counts(n, seed=seed)
        cells.obs = cells.obs[["source_cell"]]
        cells.var = cells.var[[]]
        cells.write_h5ad(src)
        size_mb = src.stat().st_size / 1e6
        code = (
            "import resource, subprocess, sys; "
            "rc = subprocess.run(sys.argv[1:]).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
        )
        cmd = [sys.executable, "-c", code, sys.executable, "-m", "scagent.cli"]
        # annotation as it streams, not the one-time filling of the vector memory
        cmd += ["annotate", str(src), "-o", str(out), "--no-build-memory"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            lines = proc.stderr.replace("\r", "\n").splitlines()
            errors = [ln for ln in lines if ln.strip() and "it/s]" not in ln and "/s]" not in ln]
            msg = f"scagent annotate failed on {n} cells: {' | '.join(errors[-20:])}"
            raise RuntimeError(msg)
        peak_mb = int(proc.stdout.strip().splitlines()[-1]) / 1024
    return {
        "cells": n,
        "input MB": size_mb,
        "seconds (process, incl. start-up)": seconds,
        "cells/s": n / seconds,
        "peak RSS MB (whole process)": peak_mb,
    }


def speed_suite(*, seed: int = 0, quick: bool = False) -> Section:
    """End-to-end speed on resampled real cells, first-call cost, streaming scale."""
    n = 500 if quick else SPEED_CELLS
    section = Section(
        "Speed and scale",
        f"{n:,} real atlas cells resampled (raw counts in, every step included: reading the "
        "values, the query's structure, the experts, fusion). The reference expert's model "
        "for the query's gene panel is fitted once (a warm-up call) and read from its cache "
        "after, as for a user's second file with the same genes.",
    )
    logger.info("Speed benchmark: annotation.")
    section.extra_tables.append(("End-to-end annotation", _annotate_rows(n, seed)))
    logger.info("Speed benchmark: reference expert first call.")
    section.extra_tables.append(
        ("Reference expert, first call for a new 2,000-gene panel", _first_call_rows(seed, quick))
    )
    n_stream = 2_000 if quick else STREAM_CELLS
    logger.info("Speed benchmark: streaming %d cells.", n_stream)
    section.extra_tables.append(
        (
            f"`scagent annotate` on a {n_stream:,}-cell .h5ad (streamed in 10,000-cell chunks)",
            [_stream_row(n_stream, seed)],
        )
    )
    section.notes.append(
        "Streaming: peak RSS is the maximum resident memory of the whole `scagent annotate` "
        "process (Python, torch and the encoder included)."
    )
    return section
