"""Learn the fusion settings shipped in ``src/scagent/experts/data/fusion.json``.

The experts run on every cross-study and degraded task of the benchmark (each query study
held out of the reference; the benchmark encoder, pretrained on unlabelled data only; plugins
trained per task on that task's reference), and :func:`scagent.experts.fit_fusion` learns the
pooling weights, the smoothing, each expert's temperature and the confidence model on all of
them. The evidence is cached, so ``scagent bench -s crossstudy`` reuses it.

Run: ``python scripts/fit_fusion.py`` (add ``--cache DIR`` to choose where evidence lives).
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from scagent import settings
from scagent.bench._crossstudy import _bench_encoder
from scagent.bench._taskrun import run_experts
from scagent.bench._tasks import cross_study_tasks, degraded_tasks
from scagent.datasets import reference_atlas
from scagent.experts import fit_fusion

OUT = Path(__file__).resolve().parents[1] / "src" / "scagent" / "experts" / "data" / "fusion.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=None, help="evidence cache folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    cache = args.cache or settings.data_dir / "bench_cache"
    atlas = reference_atlas()
    tasks = cross_study_tasks(atlas) + degraded_tasks(atlas, seed=args.seed)
    encoder, note = _bench_encoder()
    runs = [run_experts(t, encoder=encoder, cache_dir=cache, seed=args.seed) for t in tasks]
    params = fit_fusion(
        [(r.evidence, r.targets) for r in runs],
        provenance={
            "tasks": [r.name for r in runs],
            "encoder": note,
            "built_by": "scripts/fit_fusion.py",
            "date": f"{datetime.now(UTC):%Y-%m-%d}",
        },
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    params.to_json(args.out)
    print(f"wrote {args.out}: weights {params.weights}, smoothing {params.smoothing}")


if __name__ == "__main__":
    main()
