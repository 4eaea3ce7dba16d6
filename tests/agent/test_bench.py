from scagent.bench import ORDER, SUITES
from scagent.bench._agent import agent_suite


def test_agent_suite_quick_rules_only(monkeypatch):
    monkeypatch.setattr("scagent.agent._embedded.embedded_available", lambda: False)
    monkeypatch.setattr("scagent.agent.embedded_available", lambda: False)
    section = agent_suite(quick=True)
    assert SUITES["agent"] is agent_suite and section.title in ORDER
    assert [r["set"] for r in section.rows] == ["main", "held_out", "held_out_2"]
    for row in section.rows:
        assert row["requests"] == 6 and 0 <= row["fully_right"] <= 1
        assert row["llm_calls_per_request"] == 0
    assert "not installed" in section.notes[0]
