"""Write docs/plugins.md from the manifests of the shipped plugins.

Usage: python scripts/write_plugin_card.py [--plugins FOLDER] [--seconds TOTAL_SECONDS] [--out FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import scagent as sa
from scagent.plugins import PluginRegistry, shipped_plugins_path


def _f(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _row(name: str, p) -> str:
    t, m = p.training, p.metrics
    own = t.get("n_own_tissue", t["n_cells"])
    cells = f"{t['n_cells']} ({own} + {t.get('n_borrowed', 0)})"
    parts = f"{t['n_train']} / {t.get('n_val', 0)} / {t.get('n_calibration', 0)}"
    adapter = "yes" if p.adapter_trained else "**no**"
    f1 = _f(m.get("macro_f1"))
    if "probe_macro_f1" in m:
        f1 += f" ({_f(m['probe_macro_f1'])})"
    ece = f"{_f(m.get('ece_uncalibrated'))} -> {_f(m.get('ece'))}"
    return (
        f"| {name} v{p.version} | {p.kind} | {len(p.labels)} | {p.max_len} | {cells} | {parts} | "
        f"{adapter} | {m.get('epochs_run')} ({m.get('best_epoch')}) | {_f(m.get('accuracy'))} | "
        f"{f1} | {ece} | {p.temperature:.2f} | {t['seconds']:.0f} |"
    )


def _per_class(p) -> list[str]:
    lines = [
        "| class | held-out cells | recall | F1 | mean confidence | ECE raw -> calibrated |",
        "|---|---|---|---|---|---|",
    ]
    for lab, r in p.metrics.get("per_class", {}).items():
        lines.append(
            f"| {lab} | {r['n']} | {r['recall']:.3f} | {r['f1']:.3f} | {r['confidence']:.3f} | "
            f"{_f(r.get('ece_uncalibrated'))} -> {_f(r['ece'])} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugins", type=Path, default=None, help="plugin folder to describe")
    parser.add_argument("--seconds", type=float, default=None, help="wall time of the build")
    parser.add_argument("--out", type=Path, default=Path("docs/plugins.md"))
    args = parser.parse_args()
    reg = PluginRegistry([args.plugins or shipped_plugins_path()])
    atlas = sa.datasets.reference_atlas()
    n_tissues = atlas.obs["tissue"].nunique()
    plugins = {name: reg.load(name) for name in reg.names()}
    lines = [
        "# Shipped plugins",
        "",
        f"Built on the bundled reference atlas ({atlas.n_obs:,} real cells, {n_tissues} "
        "tissues) by",
        "",
        "```bash",
        "rm -rf src/scagent/plugins/data/* && scagent plugins train -o src/scagent/plugins/data",
        "```",
        "",
    ]
    if args.seconds:
        lines += [f"which took {args.seconds / 60:.1f} min on a 2-core CPU (seed 0).", ""]
    lines += [
        "Each plugin: MoE-LoRA (5 experts of rank 8, softmax gate per token) on the query and "
        "value rows of every attention layer of the default encoder, plus a 200-slot head "
        "(2 hidden layers), trained in two stages (head-only probe, then adapter and head). "
        "Each class of 5+ cells gives 30% of its cells to two disjoint held-out halves: "
        "*early stopping* (picks the fine-tuning epoch; the probe is kept instead only "
        "where fine-tuning is clearly worse on these cells) and *calibration* (fits the "
        "softmax temperature, used only where cross-fitting shows it lowers the ECE of "
        "cells it was not fitted on). All metrics below are on the calibration cells, "
        "which neither training nor early stopping saw; ECE after the temperature is "
        "cross-fitted. The cell-type plugins also learn from cells of their types in other "
        "tissues (`borrowed`).",
        "",
        "| plugin | kind | classes | tokens/cell | cells (own + borrowed) | train / early "
        "stopping / calibration | adapter trained | epochs (best) | accuracy | macro-F1 "
        "(probe) | ECE raw -> calibrated | temperature | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(name, p) for name, p in plugins.items()]
    untrained = {n: p for n, p in plugins.items() if not p.adapter_trained}
    if untrained:
        lines += ["", "Plugins without a trained adapter (the frozen encoder plus a head):", ""]
        lines += [f"- **{n}**: {p.metrics.get('adapter_note', '')}" for n, p in untrained.items()]
    lines += ["", "Temperature:", ""]
    lines += [f"- **{n}**: {p.metrics.get('temperature_note', '')}" for n, p in plugins.items()]
    for name, p in plugins.items():
        if p.kind == "tissue_assignment":
            lines += ["", f"Tissue assignment per tissue (`{name}`, calibration cells):", ""]
            lines += _per_class(p)
    lines += ["", "Classes (slot order) and Cell Ontology ids:", ""]
    for name, p in plugins.items():
        pairs = ", ".join(
            f"{lab} ({oid})" if oid else lab for lab, oid in zip(p.labels, p.ontology_ids)
        )
        lines.append(f"- **{name}**: {pairs}")
    lines += ["", "Per class (calibration cells; classes under 5 cells have none):"]
    for name, p in plugins.items():
        if p.kind == "cell_type":
            lines += ["", f"**{name}**", ""]
            lines += _per_class(p)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
