"""Novelty: which cells belong to no known type (the paper's section 4.2).

Per-cell signals (:mod:`._signals`), candidate groups and their evidence (:mod:`._groups`),
the statistical judge (:mod:`._judge`) and the LLM judge (:mod:`._llm_judge`); nearest known
cells come from the vector memory or an exact search (:mod:`._neighbours`). The tool is
:func:`scagent.tl.detect_novel`.
"""

from __future__ import annotations

from ._baseline import class_marker_baseline
from ._decide import (
    MARKER_MAJORITY,
    OPEN_SET_MAJORITY,
    StatisticalDecision,
    confirmed_units,
    marker_shares,
    open_set_background,
    open_set_shares,
    query_shift,
    statistical_decision,
    voting_units,
)
from ._groups import MIN_CELLS, MIN_SHARE, candidate_groups, group_evidence, group_means
from ._judge import FEATURES, JudgeParams, fit_judge, judge_features, novelty_probability
from ._llm_judge import SCHEMA, compact_evidence, judge_with_llm, novelty_prompt, parse_judgement
from ._neighbours import ExactNeighbours, MemoryNeighbours, NeighbourSource
from ._openset import OneVsRest, fit_one_vs_rest, open_set_rejected
from ._signals import SIGNALS, CellSignals, call_support, cell_signals, outside_mass

__all__ = [
    "FEATURES",
    "MARKER_MAJORITY",
    "MIN_CELLS",
    "MIN_SHARE",
    "OPEN_SET_MAJORITY",
    "SCHEMA",
    "SIGNALS",
    "CellSignals",
    "ExactNeighbours",
    "JudgeParams",
    "MemoryNeighbours",
    "NeighbourSource",
    "OneVsRest",
    "StatisticalDecision",
    "call_support",
    "candidate_groups",
    "cell_signals",
    "class_marker_baseline",
    "compact_evidence",
    "confirmed_units",
    "fit_judge",
    "fit_one_vs_rest",
    "group_evidence",
    "group_means",
    "judge_features",
    "judge_with_llm",
    "marker_shares",
    "novelty_probability",
    "novelty_prompt",
    "open_set_background",
    "open_set_rejected",
    "open_set_shares",
    "outside_mass",
    "parse_judgement",
    "query_shift",
    "statistical_decision",
    "voting_units",
]
