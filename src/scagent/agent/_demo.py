"""The README's conversation: annotate bundled brain cells, find the novel ones, agree to
learn them, annotate again (``scagent demo`` runs it after its PBMC part).

Everything the conversation writes (the learnt type, the vector memory, the history, the
conversation's checkpoints) goes to a data directory inside the demo's own folder, so the
user's store is never changed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["NEW_TYPE", "TURNS", "DemoOutcome", "brain_example", "run_conversation", "summary"]

#: The name the user gives the novel cells.
NEW_TYPE = "malignant cell"
#: What the user says, turn by turn (``{path}``: the data file).
TURNS = (
    "Here is brain data at {path}, what cell types are in it?",
    f"yes, learn them as {NEW_TYPE}",
    "Annotate it again",
)
_HOME = "agent-home"
_MARK = ".scagent-demo-home"
_MEMORY_ENV = ("SCAGENT_MILVUS_URI", "SCAGENT_MILVUS_TOKEN")


def brain_example():
    """The bundled malignant oligodendroglioma cells (:func:`scagent.datasets.novel_type_example`,
    a type the reference lacks) with the same study's non-malignant brain cells from the
    reference atlas (types it knows), on the study's genes; ``obs['cell_type']`` holds the
    published labels."""
    import anndata as ad

    from ..datasets import novel_type_example, reference_atlas

    novel = novel_type_example()
    atlas = reference_atlas()
    known = atlas[(atlas.obs["tissue"] == "brain").to_numpy(), novel.var_names]
    both = ad.concat([novel, known], join="inner")
    both.obs = both.obs[["cell_type", "donor"]].astype(str).astype("category")
    both.obs_names_make_unique()
    return both


@dataclass
class DemoOutcome:
    """What the conversation did, from the tools' results and the annotated file.

    Attributes
    ----------
    backend
        The LLM that parsed the requests (``"rules"``: none).
    turns
        ``{"user", "agent", "seconds", "parser"}`` per turn (``parser``: what read the
        request: ``"llm"``, ``"rules"``..., or code for a consent answer).
    n_cells, n_malignant
        Cells in the file; cells the study labelled malignant.
    flagged
        Cells flagged novel in the first turn (of them, ``flagged_malignant`` malignant).
    learnt
        Cells learnt as :data:`NEW_TYPE` (0 when nothing was learnt).
    named_after, named_after_malignant
        Cells called :data:`NEW_TYPE` by the last annotation; of them, malignant ones.
    known_kept, n_known
        Known (non-malignant) cells keeping their published type in the last annotation.
    """

    backend: str
    turns: list[dict] = field(default_factory=list)
    n_cells: int = 0
    n_malignant: int = 0
    flagged: int = 0
    flagged_malignant: int = 0
    learnt: int = 0
    named_after: int = 0
    named_after_malignant: int = 0
    known_kept: int = 0
    n_known: int = 0


@contextmanager
def _own_home(folder: Path):
    """Point ``sa.settings.data_dir`` at ``folder/agent-home`` (emptied, its caches kept)
    and hide a configured Milvus server, for the duration."""
    from .._settings import settings

    home = folder / _HOME
    if home.exists() and (home / _MARK).exists():
        for child in home.iterdir():
            if child.name in ("cache", _MARK):  # keep only derived caches
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    home.mkdir(parents=True, exist_ok=True)
    (home / _MARK).write_text("scagent demo data directory: deleted and refilled by each run\n")
    saved_dir, saved_env = settings._data_dir, {k: os.environ.pop(k, None) for k in _MEMORY_ENV}
    settings.data_dir = home
    try:
        yield home
    finally:
        settings._data_dir = saved_dir
        for k, v in saved_env.items():
            if v is not None:
                os.environ[k] = v


def _llm():
    from ._embedded import EmbeddedLLM, embedded_available, model_path

    if not embedded_available():
        return None
    return EmbeddedLLM(model_file=model_path())  # joined once in the user's data directory


def run_conversation(
    folder: str | os.PathLike, *, llm="auto", echo: Callable[[str], None] = print
) -> DemoOutcome:
    """Run the README's conversation through :class:`~scagent.Agent` on :func:`brain_example`.

    Parameters
    ----------
    folder
        Where the data file, the annotated file, the transcript (``conversation.md``,
        ``conversation.json``) and the conversation's own data directory go.
    llm
        ``"auto"``: the embedded model when it is installed, else the rules; or any ``llm``
        :class:`~scagent.Agent` takes.
    echo
        Prints each line (the user's text, the agent's answer).

    Returns
    -------
    What happened (also written to ``conversation.json``).
    """
    import anndata as ad
    import numpy as np

    from ._agent import Agent

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = _llm() if llm == "auto" else llm
    data = brain_example()
    path = folder / "brain_example.h5ad"
    data.write_h5ad(path)
    truth = data.obs["cell_type"].astype(str).to_numpy()
    malignant = truth == NEW_TYPE
    with _own_home(folder) as home:
        agent = Agent(llm=model, allow=[folder])
        name = "rules" if agent.llm is None else agent.llm.name
        outcome = DemoOutcome(backend=name, n_cells=data.n_obs, n_malignant=int(malignant.sum()))
        if llm == "auto" and agent.llm is None:
            echo(
                "(the embedded LLM is not installed: pip install -e '.[llm]'; the requests "
                "are parsed by the deterministic rules instead)"
            )
        echo(f"LLM: {name}; the conversation's data directory: {home}")
        out = None
        try:
            for turn, template in enumerate(TURNS):
                text = template.format(path=path)
                echo(f"\nyou: {text}")
                t0 = time.perf_counter()
                reply = agent.ask(text)
                seconds = round(time.perf_counter() - t0, 1)
                # a consent answer is read by code (yes/no and a checked name), never the LLM
                how = "code (a consent answer)" if turn == 1 else reply.request.get("parser", "")
                echo(f"scagent ({seconds:.0f} s; request read by: {how}): {reply}")
                outcome.turns.append(
                    {"user": text, "agent": str(reply), "seconds": seconds, "parser": how}
                )
                results = reply.results
                out = (results.get("annotate") or {}).get("out", out)
                if turn == 0:
                    if not reply.question:  # nothing novel: nothing to learn
                        break
                    flagged = ad.read_h5ad(out).obs["scagent_is_novel"].to_numpy(dtype=bool)
                    outcome.flagged = int(flagged.sum())
                    outcome.flagged_malignant = int((flagged & malignant).sum())
                elif turn == 1:
                    outcome.learnt = int((results.get("add_cell_type") or {}).get("n_cells", 0))
                    if not outcome.learnt:
                        break
                elif out is not None and "annotate" in results:
                    calls = ad.read_h5ad(out).obs["scagent_cell_type"].astype(str).to_numpy()
                    outcome.named_after = int((calls == NEW_TYPE).sum())
                    outcome.named_after_malignant = int(((calls == NEW_TYPE) & malignant).sum())
                    outcome.known_kept = int(np.sum((calls == truth) & ~malignant))
                    outcome.n_known = int((~malignant).sum())
        finally:
            agent.close()
    _write(folder, outcome)
    return outcome


def _write(folder: Path, outcome: DemoOutcome) -> None:
    (folder / "conversation.json").write_text(json.dumps(asdict(outcome), indent=1) + "\n")
    lines = [f"# scagent demo conversation\n\nLLM: {outcome.backend}\n"]
    for t in outcome.turns:
        lines += [
            f"**you:** {t['user']}\n",
            f"**scagent** ({t['seconds']:.0f} s; request read by: {t['parser']}):\n",
        ]
        lines += ["```text", t["agent"], "```\n"]
    lines.append(summary(outcome))
    (folder / "conversation.md").write_text("\n".join(lines) + "\n")


def summary(outcome: DemoOutcome) -> str:
    """One paragraph: flagged, learnt, named after."""
    return (
        f"{outcome.n_cells} cells ({outcome.n_malignant} malignant by the study's labels): "
        f"{outcome.flagged} flagged novel ({outcome.flagged_malignant} malignant), "
        f"{outcome.learnt} learnt as {NEW_TYPE!r}; annotated again, {outcome.named_after} "
        f"called {NEW_TYPE!r} ({outcome.named_after_malignant} of the {outcome.n_malignant} "
        f"malignant) and {outcome.known_kept} of the {outcome.n_known} known cells kept "
        "their published type."
    )
