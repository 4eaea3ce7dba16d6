"""The ``scagent`` application, its shared option types and error handling."""

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
    from .._errors import InputDataError

    try:
        yield
    except (InputDataError, OSError, *extra) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None
