"""``scagent plugins``: list and train MoE-LoRA plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import (
    PluginFolder,
    Verbose,
    _Command,
    _Group,
    _logging,
    _user_errors,
    app,
)

plugins_app = typer.Typer(cls=_Group, help="Train and list MoE-LoRA plugins.", no_args_is_help=True)
app.add_typer(plugins_app, name="plugins")


@plugins_app.command("list", cls=_Command)
def plugins_list(plugins: PluginFolder = None) -> None:
    """List plugins: kind, tissue, version, classes, adapter trained, held-out macro-F1."""
    from ..plugins import resolve_registry

    with _user_errors():
        table = resolve_registry(plugins).table()
    if table.empty:
        typer.echo("no plugins found")
        return
    cols = [
        "name",
        "kind",
        "tissue",
        "version",
        "n_classes",
        "n_train_cells",
        "adapter_trained",
        "val_macro_f1",
    ]
    typer.echo(table[cols].to_string(index=False, float_format="{:.3f}".format))


@plugins_app.command("train", cls=_Command)
def plugins_train(
    data: Annotated[
        Path | None,
        typer.Argument(metavar="FILE", help="Labelled reference (default: the bundled atlas)."),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="A stored dataset instead of FILE (scagent memory list): plugins go to "
            "its own folder, used when annotating with --reference NAME.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FOLDER",
            help="Plugin folder (default: user's, or the dataset's).",
        ),
    ] = None,
    tissue_key: Annotated[
        str, typer.Option(metavar="COLUMN", help=".obs column of tissues (FILE).")
    ] = "tissue",
    label_key: Annotated[
        str, typer.Option(metavar="COLUMN", help=".obs column of cell types (FILE).")
    ] = "cell_type",
    tissue: Annotated[
        list[str] | None,
        typer.Option(metavar="TISSUE", help="Only these tissues (repeatable)."),
    ] = None,
    tissue_plugin: Annotated[
        bool, typer.Option(help="Also train the tissue-assignment plugin.")
    ] = True,
    borrow: Annotated[
        bool, typer.Option(help="Learn each type also from other tissues' cells of it.")
    ] = True,
    model: Annotated[str, typer.Option(metavar="MODEL", help="Encoder to adapt.")] = "default",
    max_epochs: Annotated[int, typer.Option(help="Upper bound on fine-tuning epochs.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of everything random.")] = 0,
    verbose: Verbose = False,
) -> None:
    """Train the tissue-assignment plugin and one cell-type plugin per tissue."""
    _logging(verbose)
    import time

    from .._errors import InputDataError

    if data is not None and reference is not None:
        with _user_errors():
            msg = (
                f"Give either FILE ({data}) or --reference ({reference}), not both: "
                "--reference trains on a dataset of the dataset store (scagent memory list)."
            )
            raise InputDataError(msg)
    from ..datasets import reference_atlas
    from ..io import read
    from ..plugins import (
        PluginRegistry,
        TrainConfig,
        default_registry,
        train_dataset_plugins,
        train_reference_plugins,
    )

    t0 = time.perf_counter()
    kw = {
        "tissues": tissue,
        "tissue_plugin": tissue_plugin,
        "borrow": borrow,
        "model": model,
        "config": TrainConfig(max_epochs=max_epochs),
        "seed": seed,
    }
    with _user_errors():
        if reference is not None:
            from ..memory import dataset_plugins_path

            folder = out if out is not None else dataset_plugins_path(reference)
            saved = train_dataset_plugins(reference, out=out, **kw)
        else:
            registry = PluginRegistry([out]) if out is not None else default_registry()
            folder = registry.roots[0]
            adata = reference_atlas() if data is None else read(data)
            saved = train_reference_plugins(
                adata, registry, tissue_key=tissue_key, label_key=label_key, **kw
            )
    for p in saved:
        f1 = p.metrics.get("macro_f1")
        typer.echo(
            f"{p.name} v{p.version}: {len(p.labels)} classes, {p.training['n_train']} training "
            f"cells, held-out macro-F1 {'n/a' if f1 is None else f'{f1:.3f}'}, "
            f"{p.training['seconds']:.0f} s, "
            + (
                "adapter trained"
                if p.adapter_trained
                else "NO adapter: " + p.metrics.get("adapter_note", "")
            )
        )
    typer.echo(f"\nsaved to {folder} in {time.perf_counter() - t0:.0f} s")
    if reference is not None and out is None:
        typer.echo(f"annotate with them: scagent annotate FILE --reference {reference}")


@plugins_app.command("rollback", cls=_Command)
def plugins_rollback(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Plugin to roll back.")],
    plugins: PluginFolder = None,
) -> None:
    """Withdraw a plugin's latest version (kept aside on disk); the previous one is used."""
    from ..plugins import resolve_registry

    with _user_errors():
        registry = resolve_registry(plugins)
        version = registry.rollback(name)
    typer.echo(f"{name}: now at v{version}")
