"""sa.tl.detect_novel on real cells: malignant oligodendroglioma cells against a reference
without them, judged by the statistical judge and by (scripted) LLMs."""

import json

import pytest

import scagent as sa
from scagent.novelty import parse_judgement


@pytest.fixture(scope="module")
def task(novel_query, tmp_path_factory):
    """A small reference (blood types and the brain's non-malignant cells) and a query of
    malignant cells plus held-out known cells."""
    sa.settings.data_dir = tmp_path_factory.mktemp("home")

    def split(tissue, _name, n):
        if tissue == "brain":
            return slice(0, 30), slice(30, None)
        if tissue == "blood" and n > 500:
            return slice(0, 40), slice(40, 48)
        return None

    ref, query, novel = novel_query(split, n_malignant=60, seed=0)
    sa.tl.annotate(query, reference=ref, progress=False, novelty=False)
    yield ref, query, novel
    sa.settings.data_dir = None


def test_malignant_cells_are_flagged_and_known_cells_kept(task):
    ref, query, novel = task
    q = sa.tl.detect_novel(query, reference=ref, copy=True)
    flags = q.obs["scagent_is_novel"].to_numpy(dtype=bool)
    assert flags[novel].mean() >= 0.8
    assert flags[~novel].mean() <= 0.2
    assert (q.obs.loc[flags, "scagent_cell_type"].astype(str) == "unknown").all()
    assert (q.obs.loc[flags, "scagent_cell_type_if_known"].astype(str) != "unknown").all()
    assert q.obs["scagent_novelty_score"].between(0, 1).all()
    assert list(q.obsm["scagent_novelty_signals"].columns)[:2] == ["uncertainty", "disagreement"]
    info = q.uns["scagent"]["novelty"]
    assert info["llm_calls"] == 0 and info["n_novel_cells"] == int(flags.sum())
    groups = q.uns["scagent"]["novel_groups"]
    assert groups and all(r["judge"].startswith("statistical") for r in groups.values())
    judged = next(r for r in groups.values() if r["judgement"]["is_novel"])
    assert judged["evidence"]["cells"] >= 5 and "explanation" in judged["judgement"]
    hinted = q.obs["scagent_novel_hint"].astype(str)
    assert hinted[flags].str.startswith("unknown to the reference; markers suggest").mean() > 0.5
    assert "scagent_is_novel" not in query.obs  # copy=True


def test_annotate_marks_novel_cells_by_default(task):
    ref, query, novel = task
    q = sa.tl.annotate(query, reference=ref, progress=False, copy=True)
    flags = q.obs["scagent_is_novel"].to_numpy(dtype=bool)
    assert flags[novel].mean() >= 0.8 and flags[~novel].mean() <= 0.2
    assert (q.obs.loc[flags, "scagent_cell_type"].astype(str) == "unknown").all()
    # novelty again on the result reads the annotation's calls, not its own "unknown"
    again = sa.tl.detect_novel(q, reference=ref, build_memory=False, copy=True)
    assert (again.obs["scagent_is_novel"] == q.obs["scagent_is_novel"]).all()


class ScriptedLLM:
    """An LLM backend that replies from a script (the agent's backends share ``complete``)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.prompts = []

    def complete(self, prompt, *, schema=None):
        self.prompts.append(prompt)
        reply = self.replies.pop(0) if self.replies else self.replies_default
        if isinstance(reply, Exception):
            raise reply
        return reply

    replies_default = "not json"


def _verdict(is_novel):
    return json.dumps(
        {
            "is_novel": is_novel,
            "closest_known_type": "oligodendrocyte",
            "confidence": 0.9,
            "explanation": "markers of oligodendrocyte precursors, far from every known type",
        }
    )


def test_one_llm_call_per_candidate_group_and_its_verdict_is_used(task):
    ref, query, _ = task
    n_groups = 50
    llm = ScriptedLLM(["<think>weighing the evidence</think>" + _verdict(False)] * n_groups)
    q = sa.tl.detect_novel(query, reference=ref, llm=llm, copy=True)
    info = q.uns["scagent"]["novelty"]
    assert info["llm_calls"] == info["n_candidate_groups"] == len(llm.prompts) > 0
    assert not q.obs["scagent_is_novel"].any()  # the LLM said: known
    assert all(j == "LLM" for j in info["judges"].values())
    assert "Examples:" in llm.prompts[0] and "Evidence:" in llm.prompts[0]


def test_malformed_or_unreachable_llm_falls_back_to_the_statistical_judge(task):
    ref, query, novel = task
    bad = ScriptedLLM([])  # every reply malformed
    q = sa.tl.detect_novel(query, reference=ref, llm=bad, copy=True)
    judges = q.uns["scagent"]["novelty"]["judges"].values()
    assert all(j.startswith("statistical (LLM output invalid") for j in judges)
    assert q.obs["scagent_is_novel"].to_numpy()[novel].mean() >= 0.8
    down = ScriptedLLM([ConnectionError("connection refused")] * 50)
    q = sa.tl.detect_novel(query, reference=ref, llm=down, copy=True)
    judges = q.uns["scagent"]["novelty"]["judges"].values()
    assert all("LLM unavailable" in j for j in judges)


def test_parse_judgement_validates_fields():
    known = ["B cell", "oligodendrocyte"]
    ok = parse_judgement("```json\n" + _verdict(True) + "\n```", known)
    assert ok["is_novel"] is True and ok["closest_known_type"] == "oligodendrocyte"
    with pytest.raises(ValueError):
        parse_judgement('{"is_novel": "maybe"}', known)
    with pytest.raises(ValueError):
        parse_judgement("no json here", known)
