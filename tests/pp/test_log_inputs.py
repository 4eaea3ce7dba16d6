"""``sa.pp.prepare`` on log-transformed input: which log of what, converted or flagged.

Real PBMC3k counts from the bundled atlas, transformed the ways files are found in the wild
(scanpy's log1p with and without normalisation, log2(x + 1), CPM), must all give the same
canonical layer: log1p of counts per 10,000 of the original counts.
"""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp
from anndata import AnnData

import scagent as sa
from scagent._constants import LAYER_COUNTS, LAYER_LOG1P, UNS_KEY


def _csr(X) -> sp.csr_matrix:
    return sp.csr_matrix(X, dtype=np.float64)


def _log1p_cp10k(counts) -> sp.csr_matrix:
    """log1p(counts per 10,000), computed independently of scagent."""
    C = _csr(counts)
    totals = np.asarray(C.sum(axis=1)).ravel()
    out = _csr(sp.diags(1e4 / totals) @ C)
    out.data = np.log1p(out.data)
    return out


def _assert_close(got, expected, atol: float = 1e-4) -> None:
    diff = abs(_csr(got) - _csr(expected))
    assert diff.nnz == 0 or diff.max() <= atol, f"max difference {diff.max()}"


def _assert_equal(got, expected) -> None:
    assert (_csr(got) != _csr(expected)).nnz == 0


@pytest.fixture(scope="module")
def pbmc_counts(atlas) -> AnnData:
    """600 PBMC3k cells of the bundled atlas (spread over the file), all 32,738 genes of the
    10x hg19 annotation they were measured with: raw counts."""
    pbmc = atlas[atlas.obs["dataset"] == "pbmc3k"]
    pbmc = pbmc[:: max(1, pbmc.n_obs // 600)][:600]
    pbmc = pbmc[:, pbmc.var["measured_in_pbmc3k"].to_numpy()]
    out = AnnData(X=sp.csr_matrix(pbmc.X, dtype=np.float32), obs=pbmc.obs[[]], var=pbmc.var[[]])
    assert out.n_obs == 600 and out.n_vars > 30_000
    assert np.all(out.X.data == np.round(out.X.data))
    return out


def _transform(adata: AnnData, how: str) -> AnnData:
    """The counts as a file would hold them after ``how`` (scanpy's own functions)."""
    adata = adata.copy()
    if how in ("log1p(CP10k)", "log1p(CPM)", "log2(CPM+1)", "log2(CP10k+1)"):
        sc.pp.normalize_total(adata, target_sum=1e6 if "CPM" in how else 1e4)
    sc.pp.log1p(adata, base=2 if how.startswith("log2") else None)
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)  # as stored in files
    return adata


CASES = [
    ("log1p(counts)", "log1p_counts", True),
    ("log2(counts+1)", "log2_counts", True),
    ("log1p(CP10k)", "log1p_normalized", False),
    ("log1p(CPM)", "log1p_normalized", False),
    ("log2(CPM+1)", "log2_normalized", False),
    ("log2(CP10k+1)", "log2_normalized", False),
]


@pytest.mark.parametrize(("how", "content", "has_counts"), CASES, ids=[c[0] for c in CASES])
def test_log_input_gives_log1p_cp10k_of_the_counts(pbmc_counts, how, content, has_counts):
    adata = _transform(pbmc_counts, how)
    assert sa.pp.detect_content(adata.X) == content
    sa.pp.prepare(adata)
    rec = adata.uns[UNS_KEY]["prepare"]
    assert (rec["source"], rec["content"], rec["has_counts"]) == ("X", content, has_counts)
    assert "warning" not in rec
    assert rec["transform"].startswith("X: ") and "log1p" in rec["transform"]
    canonical = adata.layers[LAYER_LOG1P]
    _assert_close(canonical, _log1p_cp10k(pbmc_counts.X))
    # every cell sums to 10,000 on the linear scale, not the 2,421-4,903 of log1p(counts)
    linear = _csr(canonical)
    linear.data = np.expm1(linear.data)
    np.testing.assert_allclose(np.asarray(linear.sum(axis=1)).ravel(), 1e4, rtol=1e-3)
    if has_counts:  # the raw counts come back exactly
        _assert_equal(adata.layers[LAYER_COUNTS], pbmc_counts.X)
    else:
        assert LAYER_COUNTS not in adata.layers


def test_log1p_counts_in_raw_are_preferred_to_log_normalised_x(pbmc_counts):
    """Recovered counts in .raw beat X's log-normalised values, as real counts do."""
    adata = _transform(pbmc_counts, "log1p(CP10k)")
    adata.raw = _transform(pbmc_counts, "log1p(counts)")
    sa.pp.prepare(adata)
    rec = adata.uns[UNS_KEY]["prepare"]
    assert (rec["source"], rec["content"], rec["has_counts"]) == (".raw", "log1p_counts", True)
    _assert_equal(adata.layers[LAYER_COUNTS], pbmc_counts.X)


def test_log_of_a_gene_subset_is_kept_and_flagged(pbmc_counts, caplog):
    """log1p(CP10k) of a gene subset has unequal totals: its scale cannot be told."""
    adata = _transform(pbmc_counts, "log1p(CP10k)")
    top = np.argsort(-np.asarray(pbmc_counts.X.sum(axis=0)).ravel())[:2000]
    adata = adata[:, np.sort(top)].copy()
    with caplog.at_level("WARNING", logger="scagent"):
        sa.pp.prepare(adata)
    rec = adata.uns[UNS_KEY]["prepare"]
    assert rec["content"] == "log1p" and rec["has_counts"] is False
    assert rec["transform"] == "X: kept as it is"
    assert "cannot be brought to log1p(CP10k) exactly" in rec["warning"]
    assert "Give the raw counts" in caplog.text
    _assert_close(adata.layers[LAYER_LOG1P], adata.X, atol=1e-6)


def test_linear_values_undo_each_log(pbmc_counts):
    counts = pbmc_counts[:100].X
    for how, content in (("log1p(counts)", "log1p_counts"), ("log2(counts+1)", "log2_counts")):
        X = _transform(pbmc_counts[:100], how).X
        _assert_equal(sa.pp.linear_values(X, content), counts)


def test_dense_log1p_counts(pbmc_counts):
    adata = _transform(pbmc_counts[:200], "log1p(counts)")
    adata.X = adata.X.toarray()
    assert sa.pp.detect_content(adata.X) == "log1p_counts"
    sa.pp.prepare(adata)
    _assert_equal(adata.layers[LAYER_COUNTS], pbmc_counts[:200].X)
