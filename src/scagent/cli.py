"""The ``scagent`` command line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

# Nothing heavy is imported here: every command imports what it needs (anndata, torch...)
# inside, so ``scagent --help`` and ``scagent info`` start at once.

_TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "Path": "PATH"}


class _Argument(TyperArgument):
    """An argument shown as ``FILE`` in usage and help (not ``{path}`` and ``<path>``)."""

    def display_type_rich(self, ctx):
        return None

    def get_usage_pieces(self, ctx) -> list[str]:
        name = self.metavar or self.name.upper()
        name = name if self.required else f"[{name}]"
        return [name + ("..." if self.nargs != 1 else "")]


def _tidy(param) -> None:
    """Plain help: no ``<bool>`` after flags, ``TEXT``/``INTEGER``/``PATH`` after options."""
    if isinstance(param, TyperArgument) and not isinstance(param, _Argument):
        param.__class__ = _Argument  # adds display methods only: same data, same parsing
        param.metavar = param.metavar or param.name.upper()
    elif isinstance(param, TyperOption) and param.metavar is None:
        if param.is_flag or param.count:
            param.metavar = ""
            return
        desc = getattr(param, "type_descriptor", None)
        annotation = getattr(desc, "annotation", None)
        args = getattr(annotation, "__args__", None)
        if args:  # list[str] and the like
            annotation = args[0]
        name = getattr(annotation, "__name__", "")
        param.metavar = _TYPE_NAMES.get(name, name.upper() or None)


class _Command(TyperCommand):
    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            _tidy(p)
        return params


class _Group(TyperGroup):
    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            _tidy(p)
        return params


app = typer.Typer(
    name="scagent",
    cls=_Group,
    help="Universal single-cell annotation: annotate cells, train plugins, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")]
GeneColumn = Annotated[
    str | None,
    typer.Option(metavar="COLUMN", help=".var column with gene ids (detected if not given)."),
]
Species = Annotated[
    str | None,
    typer.Option(
        metavar="SPECIES",
        help="human or mouse: keep this species' genes and cells of a file mixing both.",
    ),
]
Output = Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="Output .h5ad.")]
PluginFolder = Annotated[
    Path | None,
    typer.Option(metavar="FOLDER", help="Plugin folder (default: user's, then shipped)."),
]


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("scagent").setLevel(logging.INFO if verbose else logging.WARNING)


@contextmanager
def _user_errors(*extra: type[Exception]) -> Iterator[None]:
    """Print bad input (unreadable files, wrong options...) as one line and exit with 2.

    :class:`~scagent.InputDataError` (plugin and checkpoint errors included) and
    :class:`OSError` (missing files, permissions, full disks) are the user's to fix; any
    other exception is a bug and keeps its traceback.
    """
    from ._errors import InputDataError

    try:
        yield
    except (InputDataError, OSError, *extra) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None


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


@app.command(cls=_Command)
def demo(verbose: Verbose = False) -> None:
    """Run the main job on the embedded defaults: annotate a PBMC dataset the atlas never saw."""
    _logging(verbose)
    import pandas as pd
    import scanpy as sc

    from . import tl
    from .tl._annotate_file import summary

    typer.echo(atlas_summary())
    adata = sc.datasets.pbmc68k_reduced()  # ships with scanpy; X is scaled, .raw log-normalised
    typer.echo(
        f"\nannotating scanpy's pbmc68k_reduced ({adata.n_obs} cells, {adata.raw.n_vars} genes, "
        "Zheng et al. 2017; not in the reference) with tissue assignment + tissue plugins:\n"
    )
    tl.annotate(adata)
    typer.echo(summary(adata.obs).to_string(index=False, float_format="{:.2f}".format))
    table = pd.crosstab(adata.obs["bulk_labels"], adata.obs["scagent_cell_type"])
    typer.echo("\npublished labels (rows) vs scagent (columns):\n")
    typer.echo(table.to_string())


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
    from . import pp
    from .io import read

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
    from . import pp, tl
    from .io import read

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
    from .bench import run

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
    gene_column: GeneColumn = None,
    species: Species = None,
    chunk_size: Annotated[int, typer.Option(help="Cells per chunk (.h5ad input).")] = 10_000,
    verbose: Verbose = False,
) -> None:
    """Annotate cell types (tissue assignment, then tissue plugins); streams .h5ad input."""
    _logging(verbose)
    from .tl import annotate_file

    with _user_errors():
        table = annotate_file(
            path,
            out,
            tissue=tissue,
            plugins=plugins,
            model=model,
            groupby=groupby,
            majority_voting=majority_voting,
            gene_column=gene_column,
            species=species,
            chunk_size=chunk_size,
        )
    typer.echo(table.to_string(index=False, float_format="{:.2f}".format))
    typer.echo(f"\nwrote {out} ({int(table['cells'].sum()):,} cells)")


plugins_app = typer.Typer(cls=_Group, help="Train and list MoE-LoRA plugins.", no_args_is_help=True)
app.add_typer(plugins_app, name="plugins")


@plugins_app.command("list", cls=_Command)
def plugins_list(plugins: PluginFolder = None) -> None:
    """List plugins: kind, tissue, version, classes, validation macro-F1."""
    from .tl._annotate import resolve_registry

    with _user_errors():
        table = resolve_registry(plugins).table()
    if table.empty:
        typer.echo("no plugins found")
        return
    cols = ["name", "kind", "tissue", "version", "n_classes", "n_train_cells", "val_macro_f1"]
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

    from .datasets import reference_atlas
    from .io import read
    from .plugins import PluginRegistry, TrainConfig, default_registry, train_reference_plugins

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
            f"cells, validation macro-F1 {'n/a' if f1 is None else f'{f1:.3f}'}, "
            f"{p.training['seconds']:.0f} s"
        )
    typer.echo(f"\nsaved to {registry.roots[0]} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":  # pragma: no cover
    app()
