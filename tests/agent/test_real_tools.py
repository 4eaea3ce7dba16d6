"""The agent on real tools and bundled data: annotate, novel cells, consent, learn, annotate
again (slow: the first run in a fresh data directory fills the vector memory and trains)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scagent as sa
from scagent.agent._demo import NEW_TYPE as NEW
from scagent.agent._demo import brain_example


@pytest.mark.slow
def test_brain_example_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCAGENT_HOME", str(tmp_path / "home"))  # never the user's store
    monkeypatch.delenv("SCAGENT_MILVUS_URI", raising=False)
    data = brain_example()  # what `scagent demo` talks about
    data.write_h5ad(tmp_path / "glioma.h5ad")
    truth = data.obs["cell_type"].astype(str).to_numpy()
    malignant = truth == "malignant cell"
    assert malignant.sum() == 142 and (~malignant).sum() > 0
    from scagent.memory import History

    agent = sa.Agent(
        llm="rules", history=History(tmp_path / "h.sqlite"), checkpoints=tmp_path / "s.sqlite"
    )
    reply = agent.ask("Here is brain data at glioma.h5ad, what cell types are in it?")
    assert reply.results["annotate"]["n_cells"] == data.n_obs
    novel = reply.results["detect_novel"]
    assert reply.question, reply.answer  # novel cells found: consent asked
    flagged = ad.read_h5ad(tmp_path / "glioma_scagent.h5ad").obs["scagent_is_novel"].to_numpy()
    assert novel["n_novel_cells"] == flagged.sum()
    assert flagged[malignant].mean() > 0.5  # most malignant cells flagged
    assert flagged[~malignant].mean() < 0.2  # few known ones

    reply = agent.ask(f"yes, learn them as {NEW}")
    added = reply.results["add_cell_type"]
    assert added["cell_type"] == NEW and added["tissue"] == "brain"
    assert added["n_cells"] == flagged.sum()
    assert f"I learnt {flagged.sum():,} cells as the new type {NEW!r}" in reply.answer
    assert (tmp_path / "home" / "memory" / "datasets").is_dir()  # learnt in the temporary home

    reply = agent.ask("annotate it again")
    assert reply.request["tissue"] == "brain"  # carried from the first turn
    rows = reply.results["annotate"]["cell_types"]
    assert NEW in {r["cell_type"] for r in rows}
    again = ad.read_h5ad(tmp_path / "glioma_scagent.h5ad").obs
    calls = again["scagent_cell_type"].astype(str).to_numpy()
    assert (calls[malignant] == NEW).mean() > 0.7, pd.Series(calls[malignant]).value_counts()
    keep = calls[~malignant] == truth[~malignant]
    assert keep.mean() >= 0.9, pd.crosstab(truth[~malignant], calls[~malignant])
    assert np.sum(calls[~malignant] == NEW) <= 0.1 * (~malignant).sum()
    assert f"- {NEW}: " in str(reply)  # named in the answer (or the text before a question)
    agent.close()
    # issue 11's target, checked last so the learning above is tested whatever it gives:
    # 111 of 142 (0.78) at the end of stop 16, one cluster of malignant cells missed
    assert flagged[malignant].mean() > 0.8, f"{flagged[malignant].sum()} of 142 flagged"


def _store_state(home):
    """What learning a type changes in a data directory: plugins, stored datasets, vectors."""
    subs = ("plugins", "memory/datasets", "memory/milvus.db/collections")
    paths = [p for sub in subs for p in (home / sub).glob("**/*") if p.is_file()]
    return sorted((str(p.relative_to(home)), p.stat().st_size, p.stat().st_mtime) for p in paths)


@pytest.mark.slow
def test_demo_conversation_leaves_the_user_store_alone(tmp_path):
    """`scagent demo`: its PBMC part, then the conversation in its own data directory."""
    import json

    from typer.testing import CliRunner

    from scagent.cli import app

    user = sa.settings.data_dir
    before = _store_state(user)
    report = tmp_path / "report"
    result = CliRunner().invoke(app, ["demo", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert (report / "pbmc68k_reduced_annotated.h5ad").is_file()
    assert "you: Here is brain data at" in result.output
    assert f"you: yes, learn them as {NEW}" in result.output
    outcome = json.loads((report / "conversation.json").read_text())
    assert len(outcome["turns"]) == 3
    assert outcome["flagged_malignant"] >= 0.8 * outcome["n_malignant"]
    assert outcome["learnt"] == outcome["flagged"]
    assert outcome["named_after_malignant"] >= 0.7 * outcome["n_malignant"]
    assert outcome["known_kept"] >= 0.9 * outcome["n_known"]
    assert "outcome: " in result.output and (report / "conversation.md").is_file()
    assert (report / "agent-home" / "memory" / "datasets").is_dir()  # learnt there ...
    assert _store_state(user) == before  # ... and not in the user's store


@pytest.mark.slow
def test_scagent_chat_full_flow_across_a_restart(tmp_path):
    """``scagent chat`` itself (a subprocess fed on stdin): annotate, novel cells and the
    consent question; the process ends; ``--session`` resumes at the question; yes, learn
    them; annotate again names the new type."""
    import os
    import re
    import subprocess
    import sys

    env = {**os.environ, "SCAGENT_HOME": str(tmp_path / "home"), "SCAGENT_LLM": "rules"}
    env.pop("SCAGENT_MILVUS_URI", None)
    brain_example().write_h5ad(tmp_path / "glioma.h5ad")

    def chat(lines, *extra):
        cmd = [sys.executable, "-m", "scagent.cli", "chat", *extra]
        done = subprocess.run(
            cmd,
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=1800,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    first = chat(["Here is brain data at glioma.h5ad, what cell types are in it?"])
    session = re.search(r"^session (\S+)", first, re.M).group(1)
    assert "share these cells with the memory" in first.lower()  # the consent question
    second = chat([f"yes, learn them as {NEW}", "annotate it again"], "--session", session)
    before, after = second.split(f"as the new type {NEW!r}", 1)
    assert "share these cells with the memory" in before.lower()  # the question, resumed
    assert f"- {NEW}: " in after  # the second annotation names the learnt type
    again = ad.read_h5ad(tmp_path / "glioma_scagent.h5ad").obs
    truth = again["cell_type"].astype(str).to_numpy()
    calls = again["scagent_cell_type"].astype(str).to_numpy()
    assert (calls[truth == "malignant cell"] == NEW).mean() > 0.7
