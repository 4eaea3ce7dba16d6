"""How long ``sa.tl.detect_novel`` takes on 10,000 cells, and how many LLM calls it makes.

The query: 10,000 cells drawn from the bundled atlas (every tissue) plus the 142 malignant
oligodendroglioma cells of :func:`scagent.datasets.novel_type_example`, annotated once
against the atlas (novelty off); then ``detect_novel`` runs with the statistical judge and,
when the embedded LLM is installed, with it (one call per candidate group, at most).
"""

from __future__ import annotations

import logging
import time

import anndata as ad
import numpy as np

logger = logging.getLogger("scagent")

__all__ = ["detect_novel_timing", "novelty_time_suite"]

N_CELLS, QUICK_CELLS = 10_000, 600


def _query(n: int, seed: int) -> ad.AnnData:
    from ..datasets import novel_type_example, reference_atlas

    atlas = reference_atlas()
    rows = np.sort(np.random.default_rng(seed).choice(atlas.n_obs, n, replace=False))
    known = atlas[rows]
    malignant = novel_type_example()
    genes = known.var_names.intersection(malignant.var_names)
    query = ad.concat([known[:, genes], malignant[:, genes]], join="inner")
    query.obs_names_make_unique()
    query.obs = query.obs[["dataset"]].copy()
    query.obs["malignant"] = np.r_[np.zeros(known.n_obs, bool), np.ones(malignant.n_obs, bool)]
    return query


def _judges() -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("statistical judge (no LLM)", None)]
    try:
        from ..agent._embedded import embedded_available
        from ..agent._llm import get_llm

        if embedded_available():
            llm = get_llm("embedded")
            out.append((llm.name, llm))
    except Exception as err:  # the LLM is optional: its row says why it is missing
        logger.warning("No embedded LLM for the detect_novel timing: %s", err)
    return out


def detect_novel_timing(*, seed: int = 0, quick: bool = False) -> list[dict]:
    """One row per judge: cells, candidate groups, novel cells, LLM calls, seconds."""
    from .. import tl

    query = _query(QUICK_CELLS if quick else N_CELLS, seed)
    t0 = time.perf_counter()
    tl.annotate(query, progress=False, novelty=False)
    annotate_s = time.perf_counter() - t0
    rows = []
    for name, llm in _judges():
        q = query.copy()
        t0 = time.perf_counter()
        tl.detect_novel(q, llm=llm, build_memory=False)
        seconds = time.perf_counter() - t0
        info = q.uns["scagent"]["novelty"]
        malignant = q.obs["malignant"].to_numpy(dtype=bool)
        rows.append(
            {
                "judge": name,
                "cells": q.n_obs,
                "candidate groups": info["n_candidate_groups"],
                "novel cells": info["n_novel_cells"],
                "malignant flagged": float(q.obs["scagent_is_novel"].to_numpy()[malignant].mean()),
                "LLM calls": info["llm_calls"],
                "detect_novel s": round(seconds, 1),
                "annotate s (once, before)": round(annotate_s, 1),
            }
        )
    return rows


def novelty_time_suite(*, seed: int = 0, quick: bool = False):
    """The ``novelty-time`` benchmark section (module docstring)."""
    from ._report import Section

    section = Section(
        "Novel-cell detection: time and LLM calls",
        f"`sa.tl.detect_novel` on {QUICK_CELLS if quick else N_CELLS:,} cells drawn from the "
        "bundled atlas (every tissue) plus the 142 malignant oligodendroglioma cells, after "
        "one annotation against the atlas; the statistical judge, then the embedded LLM "
        "(one call per candidate group at most) when it is installed.",
    )
    section.extra_tables.append(("Per judge", detect_novel_timing(seed=seed, quick=quick)))
    section.notes.append(
        "The atlas cells are the reference's own cells (known by construction): the novel "
        "cells beyond the 142 malignant ones are false alarms of the judge on this query."
    )
    return section
