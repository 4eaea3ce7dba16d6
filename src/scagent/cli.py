"""The ``scagent`` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="scagent",
    help="Universal single-cell annotation: read data, inspect the bundled reference, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")]


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("scagent").setLevel(logging.INFO if verbose else logging.WARNING)


def _fail(err: Exception) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code=2)


def atlas_summary() -> str:
    """A text summary of the bundled reference atlas: cells per tissue and type."""
    from .datasets import novel_type_example, reference_atlas

    adata = reference_atlas()
    obs = adata.obs
    lines = [
        f"scagent reference atlas: {adata.n_obs:,} cells, {adata.n_vars:,} genes, "
        f"{obs['tissue'].nunique()} tissues, {obs['cell_type'].nunique()} cell types, "
        f"{obs['dataset'].nunique()} studies",
        "",
        f"{'tissue':<13}{'cells':>6}  cell types (cells)",
    ]
    for tissue, sub in obs.groupby("tissue", observed=True):
        counts = sub["cell_type"].value_counts()
        counts = counts[counts > 0]
        types = ", ".join(f"{t} ({n})" for t, n in counts.items())
        lines.append(f"{tissue!s:<13}{len(sub):>6}  {types}")
    lines += ["", "studies:"]
    for name, text in adata.uns["scagent_dataset"]["studies"].items():
        lines.append(f"  {name}: {text}")
    novel = novel_type_example()
    lines.append(
        f"\nnovel-type example: {novel.n_obs} malignant oligodendroglioma cells from "
        f"{novel.obs['donor'].nunique()} patients (kept out of the reference)"
    )
    return "\n".join(lines)


@app.command()
def demo(verbose: Verbose = False) -> None:
    """Run the main job on the embedded defaults (now: summarise the bundled reference atlas)."""
    _logging(verbose)
    typer.echo(atlas_summary())


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="Data file or 10x directory to inspect.")],
    gene_column: Annotated[
        str | None, typer.Option(help=".var column with gene ids (detected if not given).")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Read a data file, recognise its genes and report what its matrix holds."""
    _logging(verbose)
    from . import pp
    from ._errors import InputDataError
    from .io import read

    try:
        adata = read(path, gene_column=gene_column)
        pp.prepare(adata)
    except (InputDataError, FileNotFoundError) as err:
        _fail(err)
    genes = adata.uns["scagent"]["genes"]
    prep = adata.uns["scagent"]["prepare"]
    typer.echo(
        f"{path}: {adata.n_obs:,} cells x {adata.n_vars:,} genes "
        f"({adata.uns['scagent']['read']['format']})\n"
        f"genes: {genes['n_recognised']:,} of {genes['n_genes']:,} recognised "
        f"({genes['species']} {genes['id_type']} ids from {genes['source_column']})\n"
        f"values: {prep['content']} from {prep['source']}; raw counts kept: {prep['has_counts']}"
    )


@app.command()
def pretrain(
    files: Annotated[list[Path], typer.Argument(help="Corpus files (any format sa.read takes).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint folder to write.")],
    epochs: Annotated[int, typer.Option(help="Passes over the corpus.")] = 10,
    d_model: Annotated[int, typer.Option(help="Embedding width.")] = 128,
    nlayers: Annotated[int, typer.Option(help="Transformer layers.")] = 4,
    nhead: Annotated[int, typer.Option(help="Attention heads.")] = 4,
    d_hid: Annotated[int, typer.Option(help="Feed-forward width.")] = 256,
    max_len: Annotated[int, typer.Option(help="Tokens per cell, <cls> included.")] = 128,
    batch_size: Annotated[int, typer.Option(help="Cells per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed of everything random.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue a finished epoch in --out.")] = True,
    verbose: Verbose = False,
) -> None:
    """Pretrain an encoder by masked expression prediction; checkpoints after every epoch."""
    _logging(verbose)
    from ._errors import InputDataError
    from .models._pretrain import PretrainConfig, build_corpus
    from .models._pretrain import pretrain as run_pretrain

    cfg = PretrainConfig(
        d_model=d_model,
        nlayers=nlayers,
        nhead=nhead,
        d_hid=d_hid,
        max_len=max_len,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
    )
    try:
        corpus = build_corpus(files)
        record = run_pretrain(corpus, out, config=cfg, resume=resume)
    except (InputDataError, FileNotFoundError, ValueError) as err:
        _fail(err)
    last = record["history"][-1]
    typer.echo(
        f"{out}: {record['data']['n_cells']:,} cells, {record['data']['n_genes_vocab']:,} genes "
        f"in vocabulary; epoch {last['epoch']}: train loss {last['train_loss']:.4f}, "
        f"validation loss {last['val_loss']:.4f}"
    )


@app.command()
def embed(
    path: Annotated[Path, typer.Argument(help="Input data file or 10x directory.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .h5ad.")],
    model: Annotated[
        str, typer.Option(help="'default', a scagent or a scGPT model folder.")
    ] = "default",
    verbose: Verbose = False,
) -> None:
    """Embed cells with the foundation encoder (writes .obsm['X_scagent'])."""
    _logging(verbose)
    from . import pp, tl
    from ._errors import InputDataError
    from .io import read

    try:
        adata = read(path)
        pp.prepare(adata)
        tl.embed(adata, model=model)
    except (InputDataError, FileNotFoundError) as err:
        _fail(err)
    adata.write_h5ad(out)
    info = adata.uns["scagent"]["embed"]
    typer.echo(
        f"{out}: {adata.n_obs:,} cells embedded in {adata.obsm['X_scagent'].shape[1]} dimensions "
        f"by {info['model']} ({info['n_genes_in_vocab']:,} genes in vocabulary, "
        f"{info['mean_tokens_per_cell']:.0f} tokens per cell)"
    )


@app.command()
def bench(
    suite: Annotated[
        list[str] | None,
        typer.Option("--suite", "-s", help="Suite to run (repeatable); all by default."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Markdown report to write.")] = Path(
        "docs/benchmarks.md"
    ),
    quick: Annotated[bool, typer.Option(help="Reduced run, for smoke tests.")] = False,
    seed: Annotated[int, typer.Option(help="Seed for splits and models.")] = 0,
    verbose: Verbose = False,
) -> None:
    """Benchmark scagent against its peers in one run; print the table and write the report."""
    _logging(verbose)
    from .bench import run

    command = (
        "scagent bench" + (" --quick" if quick else "") + "".join(f" -s {s}" for s in suite or [])
    )
    try:
        text = run(suite, out=out, quick=quick, seed=seed, command=command)
    except ValueError as err:
        _fail(err)
    typer.echo(text)
    typer.echo(f"\nwrote {out}")


if __name__ == "__main__":  # pragma: no cover
    app()
