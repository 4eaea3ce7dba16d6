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
    assert flagged[malignant].mean() > 0.8  # most malignant cells flagged
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
