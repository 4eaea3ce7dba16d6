from scagent.agent import Request, plan, validate

from .conftest import KNOWN


def test_missing_file_and_unknown_tissue(workdir):
    request = validate(Request("get_cell_w_tissue", "liver", "data/none.h5ad"), known=KNOWN)
    assert not request.refused
    assert request.problems == [
        "file 'data/none.h5ad' does not exist",
        f"unknown tissue 'liver'; known tissues: {', '.join(KNOWN)}",
    ]
    assert plan(request) == []


def test_no_file(workdir):
    request = validate(Request("get_cell"), known=KNOWN)
    assert "no data file" in request.problems[0]


def test_unreadable_file(workdir):
    path = workdir / "data" / "locked.h5ad"
    path.write_bytes(b"x")
    path.chmod(0)
    try:
        request = validate(Request("get_cell", None, "data/locked.h5ad"), known=KNOWN)
    finally:
        path.chmod(0o600)
    import os

    if os.geteuid() != 0:  # root reads anything
        assert request.problems == ["file 'data/locked.h5ad' is not readable"]


def test_add_cell_needs_tissue_and_a_clean_name(workdir):
    request = validate(Request("add_cell", None, "data/pbmc.h5ad", None), known=KNOWN)
    assert len(request.problems) == 2
    bad = validate(Request("add_cell", "blood", "data/pbmc.h5ad", "x; rm -rf"), known=KNOWN)
    assert "unexpected characters" in bad.problems[0]


def test_data_dir_is_allowed(workdir):
    home = workdir / "home"
    home.mkdir()
    (home / "a.h5ad").write_bytes(b"x")
    request = validate(Request("get_cell", None, str(home / "a.h5ad")), known=KNOWN)
    assert request.problems == []


def test_plans():
    ok = {"file_path": "a.h5ad"}
    assert plan(Request("get_cell", **ok)) == ["memory_search", "annotate", "detect_novel"]
    assert plan(Request("get_tissue", **ok)) == ["memory_search", "annotate"]
    assert plan(Request("add_cell", "brain", cell_type="x", **ok)) == ["add_cell_type"]
    assert plan(Request("get_cell", problems=["x"], **ok)) == []
