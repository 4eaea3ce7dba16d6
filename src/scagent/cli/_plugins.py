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
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FOLDER", help="Plugin folder (default: user's)."),
    ] = None,
    tissue_key: Annotated[
        str, typer.Option(metavar="COLUMN", help=".obs column of tissues.")
    ] = "tissue",
    label_key: Annotated[
        str, typer.Option(metavar="COLUMN", help=".obs column of cell types.")
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

    from ..datasets import reference_atlas
    from ..io import read
    from ..plugins import PluginRegistry, TrainConfig, default_registry, train_reference_plugins

    registry = PluginRegistry([out]) if out is not None else default_registry()
    t0 = time.perf_counter()
    with _user_errors():
        adata = reference_atlas() if data is None else read(data)
        saved = train_reference_plugins(
            adata,
            registry,
            tissue_key=tissue_key,
            label_key=label_key,
            tissues=tissue,
            tissue_plugin=tissue_plugin,
            borrow=borrow,
            model=model,
            config=TrainConfig(max_epochs=max_epochs),
            seed=seed,
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
    typer.echo(f"\nsaved to {registry.roots[0]} in {time.perf_counter() - t0:.0f} s")


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
