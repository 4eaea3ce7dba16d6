"""``scagent ask``, ``scagent chat`` and ``scagent doctor``: the agent on the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from ._app import Verbose, _Command, _logging, _user_errors, app

LLMOption = Annotated[
    str | None,
    typer.Option(
        "--llm",
        metavar="BACKEND",
        help="auto, embedded, openai[:MODEL] or rules (default: $SCAGENT_LLM, else "
        "`scagent config set llm`, else auto).",
    ),
]
Session = Annotated[
    str | None,
    typer.Option(metavar="ID", help="Conversation id: the same id continues a conversation."),
]
AllowDir = Annotated[
    list[Path] | None,
    typer.Option(
        "--allow-dir",
        metavar="FOLDER",
        help="Also allow files in this folder (repeatable; default: the current folder and "
        "the scagent data folder).",
    ),
]

_STEPS = {
    "parse": "understood the request",
    "validate": "checked it",
    "plan": "planned the tools",
    "run_tools": "ran the tools",
    "consent": "asked for consent",
    "learn": "learnt the new type",
}


def _agent(llm, session, allow):
    from ..agent import Agent, LLMError

    try:
        return Agent(llm=llm, session=session, allow=allow or ())
    except LLMError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=2) from None


def _progress(step: str) -> None:
    if step in _STEPS:
        typer.echo(f"  ... {_STEPS[step]}", err=True)


@app.command("ask", cls=_Command)
def ask(
    request: Annotated[str, typer.Argument(metavar="REQUEST", help="What you want, in words.")],
    plan_only: Annotated[
        bool, typer.Option("--plan-only", help="Print the parsed request and plan as JSON.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", metavar="FILE", help="Annotated .h5ad (default: beside the input)."
        ),
    ] = None,
    llm: LLMOption = None,
    session: Session = None,
    allow_dir: AllowDir = None,
    verbose: Verbose = False,
) -> None:
    """Ask the agent once: annotate a file, name its tissue, or add a cell type."""
    _logging(verbose)
    from ..agent import LLMError

    agent = _agent(llm, session, allow_dir)
    with _user_errors(LLMError):
        if plan_only:
            typer.echo(json.dumps(agent.plan(request), indent=1))
            return
        reply = agent.ask(request, out=out, progress=_progress if verbose else None)
    typer.echo(str(reply))
    if reply.question:
        typer.echo(f"(continue with: scagent chat --session {agent.session})", err=True)


@app.command("chat", cls=_Command)
def chat(
    session: Session = None,
    llm: LLMOption = None,
    allow_dir: AllowDir = None,
    verbose: Verbose = False,
) -> None:
    """Talk with the agent; the conversation is kept (continue it with --session ID)."""
    _logging(verbose)
    from ..agent import LLMError

    agent = _agent(llm, session, allow_dir)
    typer.echo(f"session {agent.session} (empty line or 'quit' to leave)")
    pending = agent.pending()
    if pending:
        typer.echo(f"scagent: {pending}")
    while True:
        try:
            text = input("you: ").strip()
        except EOFError:
            break
        if not text or text.lower() in ("quit", "exit", "bye"):
            break
        t0 = time.perf_counter()
        with _user_errors(LLMError):
            reply = agent.ask(text, progress=_progress)
        typer.echo(f"scagent: {reply}")
        typer.echo(f"  ({time.perf_counter() - t0:.1f} s)", err=True)
    typer.echo(f"bye (resume with: scagent chat --session {agent.session})")


@app.command("doctor", cls=_Command)
def doctor(llm: LLMOption = None, verbose: Verbose = False) -> None:
    """Say which LLM backend is active and whether it answers."""
    _logging(verbose)
    from ..agent import LLMError, backend_choice, embedded_available, get_llm, parse_request

    with _user_errors(LLMError):
        name, choice = backend_choice(llm)
    how = choice.describe()
    if choice.value == "auto":
        have = "is installed" if name == "embedded" else "is not installed"
        how = f"auto: the embedded model {have}; {how}"
    typer.echo(f"LLM backend: {name} ({how})")
    typer.echo(
        "choose with --llm, $SCAGENT_LLM or `scagent config set llm BACKEND` (in that order)"
    )
    installed = "no"
    if embedded_available():
        from ..agent import EmbeddedLLM

        try:
            embedded = EmbeddedLLM()
            grammar = "JSON-schema constrained" if embedded.constrained else "unconstrained"
            installed = f"yes ({embedded.runtime} runtime, {grammar} decoding)"
        except LLMError as err:
            installed = f"yes, but its runtime: {err}"
    typer.echo(f"embedded model installed: {installed}")
    if name == "rules":
        typer.echo("no LLM: requests are parsed by the deterministic rules")
        return
    try:
        model = get_llm(choice.value)
        t0 = time.perf_counter()
        request = parse_request("Annotate the blood cells in check.h5ad", llm=model, retries=0)
    except LLMError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(code=1) from None
    seconds = time.perf_counter() - t0
    ok = request.parser == "llm" and request.fields() == {
        "requirement": "get_cell_w_tissue",
        "tissue": "blood",
        "file_path": "check.h5ad",
        "cell_type": None,
    }
    typer.echo(
        f"{model.name}: {'answers correctly' if ok else 'answered'} in {seconds:.1f} s "
        f"({request.parser})"
    )
    if not ok:
        raise typer.Exit(code=1)
