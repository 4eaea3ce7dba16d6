"""``scagent memory``: datasets, vector memory, history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import (
    Verbose,
    _Command,
    _Group,
    _logging,
    _user_errors,
    app,
)

memory_app = typer.Typer(
    cls=_Group,
    help="The memory: reference datasets, cell embeddings in Milvus (two spaces), history.",
    no_args_is_help=True,
)
app.add_typer(memory_app, name="memory")

CellTypeKey = Annotated[
    str | None, typer.Option(metavar="COLUMN", help=".obs column of cell-type labels.")
]
TissueKey = Annotated[str | None, typer.Option(metavar="COLUMN", help=".obs column of tissues.")]
OneTissue = Annotated[
    str | None, typer.Option(metavar="TISSUE", help="One tissue for all cells (no column).")
]
DatasetName = Annotated[
    str | None, typer.Option(metavar="NAME", help="Dataset name (default: the file's stem).")
]


@memory_app.command("build", cls=_Command)
def memory_build(
    from_reference: Annotated[
        bool,
        typer.Option(
            "--from-reference", help="Embed the dataset store's references (the default)."
        ),
    ] = False,
    reference: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="Only this stored dataset (repeatable)."),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option("--from", metavar="FILE", help="Embed this labelled file instead."),
    ] = None,
    cell_type_key: CellTypeKey = None,
    tissue_key: TissueKey = None,
    tissue: OneTissue = None,
    name: DatasetName = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Empty both spaces first.")] = False,
    stats_only: Annotated[
        bool, typer.Option("--stats-only", help="Only recompute the class statistics.")
    ] = False,
    model: Annotated[str, typer.Option(metavar="MODEL", help="Encoder.")] = "default",
    verbose: Verbose = False,
) -> None:
    """Embed reference cells in the pretrained and tuned spaces and store them in Milvus."""
    _logging(verbose)
    from ..memory._commands import build

    if source is not None and (from_reference or reference):
        typer.echo("error: give --from FILE or --from-reference/--reference, not both", err=True)
        raise typer.Exit(code=2)
    with _user_errors(ValueError):
        build(
            names=reference,
            source=source,
            cell_type_key=cell_type_key,
            tissue_key=tissue_key,
            tissue=tissue,
            name=name,
            fresh=fresh,
            stats_only=stats_only,
            model=model,
            echo=typer.echo,
        )


@memory_app.command("info", cls=_Command)
def memory_info(verbose: Verbose = False) -> None:
    """Where the memory is, its index, and its cells per space, tissue and type."""
    _logging(verbose)
    from ..memory._commands import describe_memory

    with _user_errors():
        typer.echo(describe_memory())


@memory_app.command("search", cls=_Command)
def memory_search(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="Cells to look up.")],
    k: Annotated[int, typer.Option("--k", help="Neighbours per cell and space.")] = 10,
    tissue: OneTissue = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FILE", help="Write every neighbour (.csv/.tsv)."),
    ] = None,
    show: Annotated[int, typer.Option(help="Cells to print.")] = 20,
    verbose: Verbose = False,
) -> None:
    """The nearest known cells of each cell of a file, in both spaces."""
    _logging(verbose)
    from ..memory._commands import search_file

    with _user_errors(ValueError):
        typer.echo(search_file(path, k=k, tissue=tissue, out=out, show=show))


@memory_app.command("add", cls=_Command)
def memory_add(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="Labelled cells (any format).")],
    cell_type_key: Annotated[
        str, typer.Option(metavar="COLUMN", help=".obs column of cell-type labels.")
    ],
    tissue_key: TissueKey = None,
    tissue: OneTissue = None,
    name: DatasetName = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a dataset.")] = False,
    verbose: Verbose = False,
) -> None:
    """Add a labelled dataset to the dataset store (bring your own reference)."""
    _logging(verbose)
    from ..memory._commands import add_dataset

    with _user_errors():
        typer.echo(
            add_dataset(
                path,
                cell_type_key=cell_type_key,
                tissue_key=tissue_key,
                tissue=tissue,
                name=name,
                replace=replace,
            )
        )


@memory_app.command("remove", cls=_Command)
def memory_remove(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Dataset to remove.")],
    verbose: Verbose = False,
) -> None:
    """Remove a dataset from the dataset store and its cells from the vector memory."""
    _logging(verbose)
    from ..memory._commands import remove_dataset

    with _user_errors():
        typer.echo(remove_dataset(name))


@memory_app.command("list", cls=_Command)
def memory_list() -> None:
    """List the datasets of the dataset store."""
    from ..memory._commands import list_datasets

    with _user_errors():
        typer.echo(list_datasets())
