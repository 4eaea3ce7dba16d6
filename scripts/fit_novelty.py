"""Learn a statistical novelty judge from the leave-one-type-out tasks.

Copied to ``src/scagent/novelty/data/judge.json``, it becomes the shipped judge. It is not
shipped today: measured on pbmc68k_reduced (known types from another study) it called 36% of
the cells unknown (see ``scagent.novelty._judge._uninformed``).

It is fitted on the leave-one-type-out tasks of the novelty benchmark (every atlas type with
at least 30 cells taken out of the reference in turn; see ``scagent.bench._novelty``), on
the mean signals of every query cluster (novel when most of its cells are); the brain task
is kept out for testing. The per-task results are those ``scagent bench -s novelty``
cached, so run the benchmark first (or this script computes them).

Run: ``python scripts/fit_novelty.py``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from scagent import settings
from scagent.bench._crossstudy import _bench_encoder
from scagent.bench._novelty import (
    _atlas_embedding,
    cluster_examples,
    novelty_tasks,
    run_scagent_novelty,
)
from scagent.novelty import fit_judge

OUT = Path("judge_loto.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    cache = settings.data_dir / "bench_cache" / "novelty"
    encoder, note = _bench_encoder()
    E = _atlas_embedding(encoder, cache)
    frames, labels, names = [], [], []
    for task in novelty_tasks(seed=args.seed):
        if task.kind != "leave-one-type-out":
            continue
        means, novel = cluster_examples(run_scagent_novelty(task, encoder, E, cache), task.novel)
        frames.append(means)
        labels.append(novel)
        names.append(task.name)
    params = fit_judge(
        frames,
        labels,
        provenance={
            "tasks": names,
            "encoder": note,
            "built_by": "scripts/fit_novelty.py",
            "date": f"{datetime.now(UTC):%Y-%m-%d}",
        },
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    params.to_json(args.out)
    print(f"wrote {args.out}: coefficients {dict(zip(params.features, params.coef))}")


if __name__ == "__main__":
    main()
