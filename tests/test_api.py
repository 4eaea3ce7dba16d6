"""The public API follows the scverse conventions the project chose (see README, STYLE)."""

import inspect
import subprocess
import sys

import pytest

import scagent as sa

PUBLIC = [
    ("read", sa.read),
    *[(f"pp.{n}", getattr(sa.pp, n)) for n in sa.pp.__all__],
    *[(f"tl.{n}", getattr(sa.tl, n)) for n in sa.tl.__all__],
    *[(f"datasets.{n}", getattr(sa.datasets, n)) for n in sa.datasets.__all__],
]


@pytest.mark.parametrize(("name", "func"), PUBLIC, ids=[n for n, _ in PUBLIC])
def test_signature_and_docstring(name, func):
    sig = inspect.signature(func)
    positional = [
        p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    assert len(positional) <= 3, f"{name}: options after the data must be keyword-only"
    assert sig.return_annotation is not inspect.Signature.empty, f"{name}: no return annotation"
    doc = inspect.getdoc(func) or ""
    assert "Returns\n-------" in doc, f"{name}: numpydoc Returns section missing"
    if sig.parameters:
        assert "Parameters\n----------" in doc, f"{name}: numpydoc Parameters section missing"
        for p in sig.parameters:
            assert p in doc, f"{name}: parameter {p!r} is not documented"


def test_adata_functions_offer_copy():
    for name, func in PUBLIC:
        params = inspect.signature(func).parameters
        if next(iter(params), None) == "adata":
            assert "copy" in params, f"{name} takes adata but has no copy="
            assert params["copy"].default is False


def test_subpackage_all_is_sorted():
    for mod in (sa.pp, sa.tl, sa.datasets, sa.io, sa.knowledge):
        assert list(mod.__all__) == sorted(mod.__all__), mod.__name__


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return out.stdout.strip()


def test_import_scagent_loads_no_heavy_module():
    """``import scagent`` must stay instant: torch, scanpy and anndata load on first use."""
    code = (
        "import sys, scagent\n"
        "print(' '.join(m for m in ('torch', 'scanpy', 'anndata', 'sklearn', 'matplotlib') "
        "if m in sys.modules))"
    )
    assert _run(code) == ""


def test_subpackages_load_on_first_use():
    code = (
        "import sys\n"
        "import scagent as sa\n"
        "before = 'scagent.tl' in sys.modules\n"
        "func = sa.tl.annotate\n"
        "print(before, 'scagent.tl' in sys.modules, 'torch' in sys.modules, func.__module__,\n"
        "      sa.read.__module__, sa.pp.prepare.__name__, 'tl' in dir(sa))\n"
        "try:\n"
        "    sa.no_such_thing\n"
        "except AttributeError as err:\n"
        "    print(err)"
    )
    lines = _run(code).splitlines()
    assert lines[0] == "False True True scagent.tl._annotate scagent.io._read prepare True"
    assert lines[1] == "module 'scagent' has no attribute 'no_such_thing'"


def test_every_subpackage_in_all_is_reachable():
    for name in sa.__all__:
        assert getattr(sa, name) is not None, name
    for name in ("io", "knowledge", "bench"):
        assert getattr(sa, name).__name__ == f"scagent.{name}"
