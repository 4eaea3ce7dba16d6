"""Top-level commands: demo, info, pretrain, embed, bench, annotate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import (
    GeneColumn,
    Output,
    PluginFolder,
    Species,
    Verbose,
    _Command,
    _logging,
    _user_errors,
    app,
)


def atlas_summary() -> str:
    """A text summary of the bundled reference atlas: cells per tissue and type."""
    from ..datasets import novel_type_example, reference_atlas

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


def _numbered_table(table) -> str:
    """A table of counts whose columns are numbered, their names listed below it (cell-type
    names are too long for a terminal's columns)."""
    frame = table.copy()
    names = list(frame.columns)
    frame.columns = [f"[{i}]" for i in range(1, len(names) + 1)]
    frame["total"] = frame.sum(axis=1)
    frame.index.name = None
    lines = [frame.to_string(), "", "columns:"]
    lines += [f"  [{i}] {name}" for i, name in enumerate(names, 1)]
    return "\n".join(lines)


@app.command(cls=_Command)
def demo(
    report: Annotated[
        Path,
        typer.Option(metavar="DIR", help="Folder for the report (figures and summary.md)."),
    ] = Path("scagent-demo-report"),
    conversation: Annotated[
        bool,
        typer.Option(
            help="Then talk with the agent about bundled brain cells: annotate, find the novel "
            "ones, learn them, annotate again (its own data directory inside DIR).",
        ),
    ] = True,
    verbose: Verbose = False,
) -> None:
    """Run the main job on the embedded defaults: annotate a PBMC dataset the atlas never saw,
    then a scripted conversation with the agent."""
    _logging(verbose)
    import matplotlib

    matplotlib.use("Agg")  # the report is written to files, never shown
    import scanpy as sc

    from .. import tl
    from ..pl._confusion import confusion_table
    from ..tl._annotate_file import summary
    from ..tl._report import report_files, write_report

    typer.echo(atlas_summary())
    adata = sc.datasets.pbmc68k_reduced()  # ships with scanpy; X is scaled, .raw log-normalised
    typer.echo(
        f"\nannotating scanpy's pbmc68k_reduced ({adata.n_obs} cells, {adata.raw.n_vars} genes, "
        "Zheng et al. 2017; not in the reference) with its three experts:\n"
    )
    tl.annotate(adata)
    typer.echo(summary(adata.obs).to_string(index=False, float_format="{:.2f}".format))
    table = confusion_table(adata, "bulk_labels")
    typer.echo("\npublished labels (rows) vs scagent (columns), cells:\n")
    typer.echo(_numbered_table(table))
    with _user_errors():
        folder = write_report(adata, report, labels_key="bulk_labels")
        annotated = folder / "pbmc68k_reduced_annotated.h5ad"
        adata.write_h5ad(annotated)
    typer.echo(f"\nreport: {folder.resolve()} ({', '.join(report_files(folder))})")
    typer.echo(f"annotated cells: {annotated.resolve()}")
    if conversation:
        _conversation(folder)


def _conversation(folder: Path) -> None:
    from ..agent import LLMError
    from ..agent._demo import run_conversation, summary

    typer.echo(
        "\na conversation with the agent (sa.Agent) about bundled brain cells: malignant "
        "oligodendroglioma cells, a type the reference lacks, with the same study's "
        "non-malignant cells, which it knows:"
    )
    with _user_errors(LLMError):
        outcome = run_conversation(folder, echo=typer.echo)
    typer.echo(f"\noutcome: {summary(outcome)}")
    typer.echo(f"transcript: {(folder / 'conversation.md').resolve()}")


@app.command(cls=_Command)
def info(
    path: Annotated[
        Path, typer.Argument(metavar="FILE", help="Data file or 10x directory to inspect.")
    ],
    gene_column: GeneColumn = None,
    species: Species = None,
    verbose: Verbose = False,
) -> None:
    """Read a data file, recognise its genes and report what its matrix holds."""
    _logging(verbose)
    from .. import pp
    from ..io import read

    with _user_errors():
        adata = read(path, gene_column=gene_column, species=species)
        pp.prepare(adata)
    genes = adata.uns["scagent"]["genes"]
    prep = adata.uns["scagent"]["prepare"]
    typer.echo(
        f"{path}: {adata.n_obs:,} cells x {adata.n_vars:,} genes "
        f"({adata.uns['scagent']['read']['format']})\n"
        f"genes: {genes['n_recognised']:,} of {genes['n_genes']:,} recognised "
        f"({genes['species']} {genes['id_type']} ids from {genes['source_column']})\n"
        f"values: {prep['content']} from {prep['source']}; raw counts kept: {prep['has_counts']}"
    )
    if prep.get("transform"):
        typer.echo(f"converted: {prep['transform']}")
    if prep.get("warning"):
        typer.echo(f"warning: {prep['warning']}")
    kept = adata.uns["scagent"].get("species")
    if kept:
        typer.echo(
            f"species: kept {kept['kept']}; dropped {kept['n_genes_dropped']:,} genes and "
            f"{kept['n_cells_dropped']:,} cells ({kept['n_cells_mixed']:,} mixed)"
        )


@app.command(cls=_Command)
def pretrain(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILES", help="Corpus files (any format sa.read takes)."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="FOLDER", help="Checkpoint folder to write.")
    ],
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
    from ..models._pretrain import PretrainConfig, build_corpus
    from ..models._pretrain import pretrain as run_pretrain

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
    with _user_errors(ValueError):
        corpus = build_corpus(files)
        record = run_pretrain(corpus, out, config=cfg, resume=resume)
    last = record["history"][-1]
    typer.echo(
        f"{out}: {record['data']['n_cells']:,} cells, {record['data']['n_genes_vocab']:,} genes "
        f"in vocabulary; epoch {last['epoch']}: train loss {last['train_loss']:.4f}, "
        f"validation loss {last['val_loss']:.4f}"
    )


@app.command(cls=_Command)
def embed(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="Input data file or 10x directory.")],
    out: Output,
    model: Annotated[
        str, typer.Option(metavar="MODEL", help="'default', a scagent or a scGPT model folder.")
    ] = "default",
    gene_column: GeneColumn = None,
    species: Species = None,
    verbose: Verbose = False,
) -> None:
    """Embed cells with the foundation encoder (writes .obsm['X_scagent'])."""
    _logging(verbose)
    from .. import pp, tl
    from ..io import read

    with _user_errors():
        adata = read(path, gene_column=gene_column, species=species)
        pp.prepare(adata)
        tl.embed(adata, model=model)
        adata.write_h5ad(out)
    info = adata.uns["scagent"]["embed"]
    typer.echo(
        f"{out}: {adata.n_obs:,} cells embedded in {adata.obsm['X_scagent'].shape[1]} dimensions "
        f"by {info['model']} ({info['n_genes_in_vocab']:,} genes in vocabulary, "
        f"{info['mean_tokens_per_cell']:.0f} tokens per cell)"
    )


@app.command(cls=_Command)
def bench(
    suite: Annotated[
        list[str] | None,
        typer.Option(
            "--suite", "-s", metavar="SUITE", help="Suite to run (repeatable); all by default."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(metavar="FILE", help="Markdown report to write.")] = Path(
        "docs/benchmarks.md"
    ),
    quick: Annotated[bool, typer.Option("--quick", help="Reduced run, for smoke tests.")] = False,
    seed: Annotated[int, typer.Option(help="Seed for splits and models.")] = 0,
    verbose: Verbose = False,
) -> None:
    """Benchmark scagent against its peers in one run; print the table and write the report."""
    _logging(verbose)
    from ..bench import run

    command = (
        "scagent bench" + (" --quick" if quick else "") + "".join(f" -s {s}" for s in suite or [])
    )
    with _user_errors(ValueError):
        text = run(suite, out=out, quick=quick, seed=seed, command=command)
    typer.echo(text)
    typer.echo(f"\nwrote {out}")


@app.command(cls=_Command)
def annotate(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="Input data file or 10x directory.")],
    out: Output,
    tissue: Annotated[
        str | None, typer.Option(metavar="TISSUE", help="Use this tissue's plugin for all cells.")
    ] = None,
    plugins: PluginFolder = None,
    reference: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Annotate against this dataset of the store alone (scagent memory list).",
        ),
    ] = None,
    model: Annotated[
        str, typer.Option(metavar="MODEL", help="Encoder the plugins were trained on.")
    ] = "default",
    groupby: Annotated[
        str | None,
        typer.Option(metavar="COLUMN", help=".obs column of clusters for a majority vote."),
    ] = None,
    majority_voting: Annotated[
        bool, typer.Option("--majority-voting", help="Vote within Leiden over-clusters.")
    ] = False,
    novelty: Annotated[
        bool,
        typer.Option(help="Mark the cells no known type fits as 'unknown' (detect_novel)."),
    ] = True,
    build_memory: Annotated[
        bool,
        typer.Option(
            help="For novelty: first store the reference's cells in the vector memory if "
            "it lacks them (once, a minute or two; as `scagent memory build` does), so "
            "detect_novel also reads the nearest known cells and how far the data sit from "
            "the reference.",
        ),
    ] = True,
    gene_column: GeneColumn = None,
    species: Species = None,
    chunk_size: Annotated[int, typer.Option(help="Cells per chunk (.h5ad input).")] = 10_000,
    report: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Also write figures and a Markdown summary here."),
    ] = None,
    labels_key: Annotated[
        str | None,
        typer.Option(
            metavar="COLUMN", help=".obs column of known labels: the report adds a confusion."
        ),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Annotate cell types (tissue assignment, then tissue plugins); streams .h5ad input."""
    _logging(verbose)
    if labels_key is not None and report is None:
        typer.echo("error: --labels-key is used by the report: add --report DIR.", err=True)
        raise typer.Exit(code=2)
    if report is not None:
        if report.exists() and not report.is_dir():
            typer.echo(f"error: --report {report} is a file; give a folder.", err=True)
            raise typer.Exit(code=2)
        import matplotlib

        matplotlib.use("Agg")  # the report is written to files, never shown
    if labels_key is not None and path.suffix.lower() == ".h5ad" and path.is_file():
        import h5py

        columns = None  # unknown: unreadable (annotate_file says why) or an old layout
        try:  # check the column before the annotation, not after it
            with h5py.File(path, "r") as f:
                obs = f.get("obs")
                if isinstance(obs, h5py.Group) and "column-order" in obs.attrs:
                    columns = [str(c) for c in obs.attrs["column-order"]]
        except OSError:
            pass
        if columns is not None and labels_key not in columns:
            typer.echo(
                f"error: --labels-key {labels_key!r} is not an .obs column of {path.name}; "
                f"columns: {columns}.",
                err=True,
            )
            raise typer.Exit(code=2)
    from ..tl import annotate_file

    with _user_errors():
        table = annotate_file(
            path,
            out,
            tissue=tissue,
            reference=reference,
            plugins=plugins,
            model=model,
            groupby=groupby,
            majority_voting=majority_voting,
            novelty=novelty,
            build_memory=build_memory,
            gene_column=gene_column,
            species=species,
            chunk_size=chunk_size,
        )
    typer.echo(table.to_string(index=False, float_format="{:.2f}".format))
    if table.attrs.get("novelty_note"):
        typer.echo(f"\nnovelty: {table.attrs['novelty_note']}")
    typer.echo(f"\nwrote {out} ({int(table['cells'].sum()):,} cells)")
    if report is None:
        return
    import anndata as ad

    from ..tl._report import report_files, write_report

    with _user_errors():
        annotated = ad.read_h5ad(out, backed="r")  # a large file is sampled, never loaded
        try:
            folder = write_report(annotated, report, labels_key=labels_key)
        finally:
            annotated.file.close()
    typer.echo(f"wrote report {folder} ({', '.join(report_files(folder))})")
