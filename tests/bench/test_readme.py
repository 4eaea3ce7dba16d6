from scagent.bench._readme import END, START, readme_summary, update_readme


def _records():
    rows = [
        {"task": "A", "method": "scagent", "accuracy": 0.9, "macro_f1": 0.8, "ece": 0.05},
        {
            "task": "A",
            "method": "reference expert alone",
            "accuracy": 0.95,
            "macro_f1": 0.9,
            "ece": 0.1,
        },
        {"task": "A", "method": "CellTypist", "accuracy": 0.85, "macro_f1": 0.7, "ece": 0.2},
        {"task": "B", "method": "scagent", "accuracy": 0.7, "macro_f1": 0.6, "ece": 0.1},
        {
            "task": "B",
            "method": "logistic regression",
            "accuracy": 0.75,
            "macro_f1": 0.65,
            "ece": 0.1,
        },
    ]
    return [
        {
            "title": "Cross-study annotation",
            "rows": rows,
            "command": "scagent bench",
            "date": "2026-11-27 17:00 UTC",
        }
    ]


def test_summary_compares_scagent_with_the_best_peer_only():
    text = readme_summary(_records())
    assert "| A | 0.900 / 0.800 | 0.050 | CellTypist | 0.850 / 0.700 |" in text
    assert "| B | 0.700 / 0.600 | 0.100 | logistic regression | 0.750 / 0.650 |" in text
    assert "on 1 of 2 queries" in text  # an expert alone is not a peer
    assert readme_summary([]) is None


def test_update_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold numbers\n{END}\noutro\n")
    assert update_readme(readme, _records())
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "old numbers" not in text and "| A |" in text
    assert not update_readme(readme, _records())  # unchanged the second time
    plain = tmp_path / "other.md"
    plain.write_text("no markers")
    assert not update_readme(plain, _records()) and plain.read_text() == "no markers"
