"""The agent on real tools and bundled data: annotate, novel cells, consent, learn."""

import pytest

import scagent as sa


@pytest.mark.slow
def test_brain_example_end_to_end(tmp_path, monkeypatch):
    if not hasattr(sa.tl, "add_cell_type"):
        pytest.skip("sa.tl.add_cell_type does not exist yet (the incremental-learning issue)")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCAGENT_HOME", str(tmp_path / "home"))
    sa.datasets.novel_type_example().write_h5ad(tmp_path / "glioma.h5ad")
    from scagent.memory import History

    agent = sa.Agent(
        llm="rules", history=History(tmp_path / "h.sqlite"), checkpoints=tmp_path / "s.sqlite"
    )
    reply = agent.ask("Annotate the brain cells in glioma.h5ad")
    assert reply.results["annotate"]["n_cells"] == 142
    assert reply.question, reply.answer  # novel cells found: consent asked
    reply = agent.ask("yes, call them malignant oligodendroglioma cell")
    assert reply.results["add_cell_type"]["cell_type"] == "malignant oligodendroglioma cell"
    reply = agent.ask("annotate it again")
    types = {r["cell_type"] for r in reply.results["annotate"]["cell_types"]}
    assert "malignant oligodendroglioma cell" in types
