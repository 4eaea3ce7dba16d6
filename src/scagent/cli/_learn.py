"""``scagent add-type``: learn a new cell type from labelled cells."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import PluginFolder, Verbose, _Command, _logging, _user_errors, app


@app.command("add-type", cls=_Command)
def add_type(
    path: Annotated[
        Path, typer.Argument(metavar="FILE", help="Cells of the new type (any format read).")
    ],
    cell_type: Annotated[
        str, typer.Option("--cell-type", metavar="NAME", help="The new type's name.")
    ],
    tissue: Annotated[str, typer.Option(metavar="TISSUE", help="Its tissue.")],
    select: Annotated[
        str | None,
        typer.Option(
            metavar="COLUMN=VALUE",
            help="Learn only the cells whose .obs COLUMN equals VALUE (default: every cell).",
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Stored reference to extend (default: the atlas)."),
    ] = None,
    ontology_id: Annotated[
        str | None, typer.Option(metavar="CL_ID", help="Its Cell Ontology id, if not by name.")
    ] = None,
    plugins: PluginFolder = None,
    verbose: Verbose = False,
) -> None:
    """Learn a new cell type (10 to 50 labelled cells); known types are replayed, not
    forgotten. The tissue's plugin gets a new version (`scagent plugins rollback` undoes it)."""
    _logging(verbose)
    from ..io import read
    from ..tl import add_cell_type

    with _user_errors(ValueError):
        adata = read(path)
        if select is not None:
            column, sep, value = select.partition("=")
            if not sep or column not in adata.obs:
                msg = (
                    f"--select {select!r}: give COLUMN=VALUE with an .obs column; "
                    f"columns: {list(adata.obs.columns)}."
                )
                raise ValueError(msg)
            adata = adata[adata.obs[column].astype(str) == value].copy()
        result = add_cell_type(
            adata,
            cell_type,
            tissue=tissue,
            reference=reference,
            ontology_id=ontology_id,
            plugins=plugins,
        )
    before = result.known_macro_f1_before
    typer.echo(
        f"learnt {result.cell_type!r} ({result.ontology_id or 'no Cell Ontology id'}) in "
        f"{result.tissue} from {result.n_cells} cells (+{result.n_replay} replayed): "
        f"plugin {result.plugin}, held-out recall {result.new_type_recall:.2f}, known types' "
        f"macro-F1 {result.known_macro_f1:.3f}"
        + (f" (before {before:.3f})" if before is not None else "")
        + f", {result.seconds['total']:.0f} s"
    )
