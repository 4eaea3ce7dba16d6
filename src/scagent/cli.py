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
