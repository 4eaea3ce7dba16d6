"""The benchmark report: every section's main table shows its values."""

from scagent.bench._report import Section, write_report


def test_a_section_with_its_own_columns_shows_them(tmp_path):
    section = Section("Agent-like", "rows whose keys are none of the annotation columns")
    section.rows = [
        {"parser": "rules", "set": "main", "fully right": 0.9375, "requests": 48},
        {"parser": "rules", "set": "held_out", "fully right": 0.8125, "requests": 16},
    ]
    text = write_report([section], tmp_path / "b.md", command="test")
    md = (tmp_path / "b.md").read_text()
    assert "| parser | set | fully right | requests |" in md
    assert "| rules | held_out | 0.812 | 16 |" in md
    assert "held_out" in text
