"""The benchmark harness behind ``scagent bench``.

Each suite returns a :class:`Section`; :func:`run` runs the chosen suites in one process
and writes ``docs/benchmarks.md`` with figures. Later suites (encoder, plugins, novelty,
incremental learning) register in :data:`SUITES`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ._agent import agent_suite
from ._annotation import annotation_suite
from ._crossstudy import crossstudy_suite
from ._encoder import encoder_suite
from ._incremental import incremental_suite
from ._memory import memory_suite
from ._novelty import novelty_suite
from ._novelty_time import novelty_time_suite
from ._plugins import plugins_suite
from ._report import Section, write_report
from ._speed import speed_suite

__all__ = ["SUITES", "Section", "run"]

SUITES: dict[str, Callable[..., Section]] = {
    "crossstudy": crossstudy_suite,
    "annotation": annotation_suite,
    "encoder": encoder_suite,
    "plugins": plugins_suite,
    "speed": speed_suite,
    "memory": memory_suite,
    "novelty": novelty_suite,
    "novelty-time": novelty_time_suite,
    "incremental": incremental_suite,
    "agent": agent_suite,
}
#: Section titles in the order the report lists them.
ORDER = [
    "Cross-study annotation",
    "Speed and scale",
    "Cell-type annotation",
    "Foundation encoder",
    "MoE-LoRA plugins",
    "Memory",
    "Novel-cell detection",
    "Novel-cell detection: time and LLM calls",
    "Incremental learning",
    "Agent: request understanding",
]


def run(
    suites: list[str] | None = None,
    *,
    out: str | Path = "docs/benchmarks.md",
    quick: bool = False,
    seed: int = 0,
    command: str = "scagent bench",
) -> str:
    """Run benchmark suites and write the report.

    Parameters
    ----------
    suites
        Names from :data:`SUITES`; all by default.
    out
        Markdown file to write; figures go to ``figures/`` beside it.
    quick
        Run a reduced version of each suite (for smoke tests).
    seed
        Seed for splits and models.
    command
        Command line recorded in the report.

    Returns
    -------
    The printed table.
    """
    names = list(SUITES) if suites is None else suites
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        msg = f"Unknown benchmark suite(s) {unknown}; available: {sorted(SUITES)}."
        raise ValueError(msg)
    sections = [SUITES[n](seed=seed, quick=quick) for n in names]
    return write_report(sections, Path(out), command=command, order=ORDER)
