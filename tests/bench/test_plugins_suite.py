import pytest

from scagent.bench._plugins import plugins_suite
from scagent.bench._report import write_report


@pytest.mark.slow
def test_quick_plugins_suite_reports_mixing_manifests_and_switching(tmp_path):
    section = plugins_suite(quick=True)
    tables = dict(section.extra_tables)
    mixing = tables["Batch mixing"]
    assert mixing and all(0 <= r["iLISI (0-1, higher = mixed)"] <= 1 for r in mixing)
    manifests = tables["Plugins (from their manifests)"]
    assert {r["plugin"] for r in manifests} >= {"tissue", "blood"}
    assert all(r["classes"] >= 2 and r["training cells"] > 0 for r in manifests)
    assert all(isinstance(r["adapter trained"], bool) for r in manifests)
    switch = tables["Plugin switching on one loaded encoder"]
    assert len(switch) == 2 and 0 < switch[0]["ms"] < 100
    write_report([section], tmp_path / "b.md", command="test")
    assert "Batch mixing" in (tmp_path / "b.md").read_text()
