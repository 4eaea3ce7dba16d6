"""Write docs/model_card.md from the shipped encoders' config.json.

Two encoders ship: the default one (``src/scagent/models/data/default``, pretrained on every
shared file) and the benchmark one (``src/scagent/bench/data/encoder``, pretrained on the
unlabelled files only, so that no cell a benchmark scores was ever seen). Run after
``scagent pretrain`` has written them: ``python scripts/write_model_card.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "src" / "scagent" / "models" / "data" / "default"
BENCH = ROOT / "src" / "scagent" / "bench" / "data" / "encoder"
LABELLED = " ".join(
    f"../shared/data/labelled/{f}"
    for f in (
        "pbmc3k_10x.h5ad",
        "kang2018_pbmc_ifnb.h5ad",
        "baron2016_human_pancreas.h5ad",
        "oligodendroglioma_tirosh2016.h5ad",
        "wu2020_tcells.h5ad",
    )
)
COMMAND = (
    "scagent pretrain " + LABELLED + " ../shared/data/unlabelled/* "
    "--out src/scagent/models/data/default --epochs {epochs}"
)
BENCH_COMMAND = (
    "scagent pretrain ../shared/data/unlabelled/* --out src/scagent/bench/data/encoder "
    "--epochs {epochs}"
)

TOKENS = [
    "## How cells become tokens",
    "",
    "Each cell is read from its own non-zero genes that are in the encoder's vocabulary. "
    "Genes that map to the same vocabulary token (duplicated symbols, several mouse genes "
    "with one human orthologue) are merged first by summing their linear expression, "
    "log1p(sum of expm1); scGPT's `embed_data` would tokenise them twice. Expression is "
    "binned per cell exactly as scGPT's released preprocessing (`scgpt/preprocess.py`, "
    '`binning` and `_digitize(side="both")`): 50 quantile edges of the cell\'s non-zero '
    "values, bins 1-50, values tied with edges placed uniformly at random among the bins "
    "those edges bound. Bins depend only on the order of a cell's values, so counts and "
    "log1p(CP10k) give the same bins. `<cls>` comes first with value -2, as in scGPT. scGPT "
    "draws the random numbers from NumPy's global state, so its tokens depend on the cells "
    "processed before; scagent derives them from a hash of the cell's own genes and values "
    "and a fixed seed: the same cell always gets the same tokens, in any batch, order or "
    "process.",
    "",
    "Published scGPT models (e.g. scGPT_human, max_seq_len 1,200) are read as scGPT's "
    "`embed_data` reads them: bins over all the cell's genes, then, for cells with more than "
    "1,199 genes, a uniformly random subset of 1,199 (scGPT: `DataCollator` sampling), drawn "
    "per cell from its content. **Deviation for scagent's own small encoders** (128 tokens): "
    "a cell keeps its 127 most expressed genes (ties by gene order) and the same scGPT "
    "binning runs over those; at 128 tokens a random subset would drop most marker genes of "
    "a typical cell. The encoders below are pretrained with this tokenisation.",
    "",
]


def main() -> None:
    lines = ["# Model cards: scagent's encoders", "", *TOKENS]
    lines += card(
        MODEL,
        'Default encoder (`sa.tl.embed(adata)`, `model="default"`)',
        "The scRNA foundation encoder shipped inside scagent, and the one the shipped plugins "
        "adapt.",
        COMMAND,
    )
    lines += card(
        BENCH,
        "Benchmark encoder (`scagent.bench`)",
        "The same architecture pretrained on the unlabelled files alone, so that no cell any "
        "benchmark scores was ever seen by it, not even without labels. The benchmarks' "
        "encoder and plugin rows use it; plugins are trained on it per task.",
        BENCH_COMMAND,
    )
    out = ROOT / "docs" / "model_card.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


def card(folder: Path, title: str, intro: str, command: str) -> list[str]:
    """The card of one encoder folder."""
    MODEL = folder
    cfg = json.loads((MODEL / "config.json").read_text())
    enc, pre, data, hist = cfg["encoder"], cfg["pretrain"], cfg["data"], cfg["history"]
    size = (MODEL / "model.safetensors").stat().st_size / 2**20
    from safetensors.torch import load_file

    n_params = sum(t.numel() for t in load_file(MODEL / "model.safetensors").values())
    steps = sum(-(-data["n_train"] // pre["batch_size"]) for _ in hist)
    minutes = sum(h["seconds"] for h in hist) / 60
    return [
        f"## {title}",
        "",
        intro + " Same architecture as scGPT (gene-token embedding, continuous "
        "value encoder over 51 per-cell expression bins, `<cls>` cell embedding, post-norm "
        "transformer encoder), much smaller, pretrained by us because no registry offers "
        "scGPT's weights.",
        "",
        "### Data",
        "",
        f"{data['n_cells']:,} real human cells from the project's shared data "
        f"({data['n_train']:,} for training, {data['n_val']:,} held out for the validation "
        "loss); mouse cells excluded. Per file:",
        "",
        *[f"- `{k}`: {v:,} cells" for k, v in data["sources"].items()],
        "",
        "Sources (those listed above): 10x PBMC3k; Kang et al. 2018 (PBMCs, control and "
        "IFN-beta stimulated); Baron et al. 2016 (pancreas); Tirosh et al. 2016 "
        "(oligodendroglioma, malignant cells included: pretraining uses no labels); Wu et al. "
        "2020 (T cells); Liao et al. 2020 (COVID-19 bronchoalveolar lavage, 3 patients); "
        "Delorey et al. 2021 (COVID-19 lung). See the README for licences.",
        "",
        f"Vocabulary: the {data['n_genes_vocab']:,} genes (current HGNC/GENCODE v44 symbols) "
        f"expressed in at least {pre['min_cells_per_gene']} corpus cells, of "
        f"{data['n_genes_corpus']:,} seen; plus `<pad>`, `<cls>`, `<eoc>`.",
        "",
        "### Configuration",
        "",
        f"- d_model {enc['d_model']}, {enc['nlayers']} layers, {enc['nhead']} heads, d_hid "
        f"{enc['d_hid']}, dropout {enc['dropout']}, {enc['input_emb_style']} value encoder, "
        f"{enc['norm_scheme']}-norm; {n_params:,} parameters; weights {size:.1f} MB "
        "(safetensors, float32).",
        f"- Tokens per cell: {pre['max_len']} including `<cls>` (the most highly expressed "
        f"genes of the cell; mean {data['mean_tokens_per_cell']:.0f} used), {pre['n_bins']} bins.",
        f"- Objective: masked expression prediction (scGPT's GEP): {pre['mask_ratio']:.0%} of "
        "each cell's gene values hidden and predicted from the token outputs; plus scGPT's "
        "GEPC (MVC decoder): the hidden values predicted from the `<cls>` embedding and the "
        f"gene embedding alone, together with {pre['n_negative']} genes per cell that are "
        "absent from it (drawn by corpus frequency) predicted as 0. Mean squared error on "
        "bins scaled to 0..1; the training loss is the sum of both terms.",
        f"- AdamW, peak learning rate {pre['lr']}, weight decay {pre['weight_decay']}, linear "
        f"warm-up over {pre['warmup_fraction']:.0%} of steps then cosine decay, batch "
        f"{pre['batch_size']}, gradient clipping 1.0, seed {pre['seed']}.",
        f"- {len(hist)} epochs, {steps:,} steps, {minutes:.0f} minutes on a 2-core CPU "
        "shared with other jobs.",
        "",
        "### Losses (masked-value MSE, bins scaled to 0..1)",
        "",
        "| epoch | train (both terms) | validation, token decoder | validation, cell decoder "
        "| seconds |",
        "|---|---|---|---|---|",
        *[
            f"| {h['epoch']} | {h['train_loss']:.4f} | {h['val_loss']:.4f} | "
            f"{h.get('val_mvc_loss', float('nan')):.4f} | {h['seconds']:.0f} |"
            for h in hist
        ],
        "",
        f"Final validation loss (token decoder): **{hist[-1]['val_loss']:.4f}**; cell-embedding "
        f"decoder: **{hist[-1].get('val_mvc_loss', float('nan')):.4f}**.",
        "",
        "### Reproduce",
        "",
        "From the repository root, with `../shared` beside it:",
        "",
        "```bash",
        command.format(epochs=pre["epochs"]),
        "python scripts/write_model_card.py",
        "```",
        "",
        "The run is deterministic for a seed on a given machine and thread count, writes a "
        "checkpoint after every epoch (atomically) and resumes an interrupted run from its last "
        "finished epoch. Quality and speed are measured by `scagent bench -s encoder` "
        "(docs/benchmarks.md).",
        "",
        "### Limits",
        "",
        "Small corpus (blood, lung and lavage dominate), small model, 128 tokens per cell: it "
        "is a real but modest encoder. For large-scale work load a published scGPT checkpoint "
        '(`sa.tl.embed(adata, model="path/to/scGPT_human")`).',
        "",
    ]


if __name__ == "__main__":
    main()
