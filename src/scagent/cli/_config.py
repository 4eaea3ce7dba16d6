"""``scagent config``: persistent settings (which LLM backend the agent uses and its endpoint)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._app import _Command, _Group, app

config_app = typer.Typer(
    cls=_Group,
    help="Persistent settings, such as the agent's LLM backend (flag > environment > file).",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")

Key = Annotated[
    str,
    typer.Argument(
        metavar="KEY", help="llm, llm_base_url, llm_model or llm_api_key_env (see: config show)."
    ),
]


def _fail(err: Exception) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code=2)


@config_app.command("set", cls=_Command)
def config_set(
    key: Key,
    value: Annotated[
        str,
        typer.Argument(
            metavar="VALUE", help="e.g. embedded, rules, openai:deepseek-r1 for the key llm."
        ),
    ],
) -> None:
    """Store a setting in the config file (e.g. config set llm embedded)."""
    from .._config_file import ConfigError, config_path, resolve, set_config

    try:
        stored = set_config(key, value)
    except (ConfigError, OSError) as err:
        _fail(err)
    typer.echo(f"{key.strip().lower()} = {stored} (in {config_path()})")
    try:
        active = resolve(key)
    except ConfigError:  # an invalid environment value: the next command will say so
        return
    if active.source in ("environment", "flag"):
        typer.echo(f"note: {active.origin} overrides it in this environment ({active.value})")


@config_app.command("get", cls=_Command)
def config_get(key: Key) -> None:
    """Print a setting's value in effect (exit 1 when nothing sets it)."""
    from .._config_file import ConfigError, resolve

    try:
        value = resolve(key).value
    except ConfigError as err:
        _fail(err)
    if value is None:
        raise typer.Exit(code=1)
    typer.echo(value)


@config_app.command("unset", cls=_Command)
def config_unset(key: Key) -> None:
    """Remove a setting from the config file (its default applies again)."""
    from .._config_file import ConfigError, config_path, unset_config

    try:
        removed = unset_config(key)
    except (ConfigError, OSError) as err:
        _fail(err)
    state = "removed from" if removed else "was not set in"
    typer.echo(f"{key.strip().lower()} {state} {config_path()}")


@config_app.command("show", cls=_Command)
def config_show(
    llm: Annotated[
        str | None,
        typer.Option("--llm", metavar="BACKEND", help="Show the effect of this --llm flag."),
    ] = None,
) -> None:
    """Show every setting, its value in effect and where it comes from."""
    from .._config_file import KEYS, ConfigError, config_path, read_config, resolve_all

    try:
        rows = resolve_all({"llm": llm})
        stored = read_config()
    except ConfigError as err:
        _fail(err)
    path = config_path()
    typer.echo(f"config file: {path}{'' if path.exists() else ' (none yet)'}")
    typer.echo("precedence: flag > environment > config file > default\n")
    width = max(map(len, KEYS))
    for row in rows:
        value = "(not set)" if row.value is None else row.value
        if row.key == "llm" and value == "auto":
            from ..agent import embedded_available

            value += " (= embedded)" if embedded_available() else " (= rules: no embedded model)"
        typer.echo(f"{row.key:<{width}}  {value}  [{row.describe()}]")
        typer.echo(f"{'':<{width}}  {KEYS[row.key].help}")
    unknown = sorted(set(stored) - set(KEYS))
    if unknown:
        typer.echo(f"\nignored (unknown keys in the file): {', '.join(unknown)}")
