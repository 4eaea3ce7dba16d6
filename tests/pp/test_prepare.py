"""``sa.pp.prepare``: content detection and the canonical log1p(CP10k) layer."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp
from anndata import AnnData

import scagent as sa
from scagent._constants import LAYER_COUNTS, LAYER_LOG1P, UNS_KEY


def _dense(X) -> np.ndarray:
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)


def _log1p_cp10k(counts) -> np.ndarray:
    """log1p(counts per 10,000), computed independently of scagent."""
    C = _dense(counts)
    totals = C.sum(axis=1, keepdims=True)
    return np.log1p(np.divide(C * 1e4, totals, out=np.zeros_like(C), where=totals > 0))


def _normalised(counts, target: float) -> sp.csr_matrix:
    C = _dense(counts)
    return sp.csr_matrix((C / C.sum(axis=1, keepdims=True) * target).astype(np.float32))


def _record(adata: AnnData) -> dict:
    return adata.uns[UNS_KEY]["prepare"]


def _assert_canonical(adata: AnnData, counts, rtol: float = 1e-5) -> None:
    canonical = adata.layers[LAYER_LOG1P]
    assert sp.issparse(canonical)
    assert canonical.dtype == np.float32
    assert canonical.shape == adata.shape
    np.testing.assert_allclose(_dense(canonical), _log1p_cp10k(counts), rtol=rtol, atol=1e-5)


@pytest.fixture(scope="module")
def oligodendroglioma(shared_data) -> AnnData:
    return sa.read(shared_data / "labelled" / "oligodendroglioma_tirosh2016.h5ad")


# --- detect_content --------------------------------------------------------------------------


def test_detect_content_kinds(pbmc_small):
    counts = pbmc_small.X
    log_norm = _normalised(counts, 1e4)
    log_norm.data = np.log1p(log_norm.data)
    log_subset = log_norm[:, :100]
    scaled = _dense(log_norm)
    scaled = (scaled - scaled.mean(axis=0)) / (scaled.std(axis=0) + 1e-8)
    assert sa.pp.detect_content(counts) == "counts"
    assert sa.pp.detect_content(_dense(counts)) == "counts"
    assert sa.pp.detect_content(_normalised(counts, 1e4)) == "normalized"
    assert sa.pp.detect_content(_normalised(counts, 1e6)) == "normalized"
    assert sa.pp.detect_content(log_norm) == "log1p_normalized"
    assert sa.pp.detect_content(log_subset) == "log1p"
    assert sa.pp.detect_content(scaled) == "scaled"


def test_detect_content_noninteger(oligodendroglioma):
    assert sa.pp.detect_content(oligodendroglioma.X) == "noninteger_counts"


# --- sources and contents --------------------------------------------------------------------


def test_prepare_raw_counts(pbmc_small):
    counts = pbmc_small.X.copy()
    assert sa.pp.prepare(pbmc_small) is None
    _assert_canonical(pbmc_small, counts)
    np.testing.assert_array_equal(_dense(pbmc_small.layers[LAYER_COUNTS]), _dense(counts))
    np.testing.assert_array_equal(_dense(pbmc_small.X), _dense(counts))  # X is left alone
    assert _record(pbmc_small) == {
        "source": "X",
        "content": "counts",
        "transform": "X: normalised to 10,000 per cell, then log1p",
        "target_sum": 1e4,
        "has_counts": True,
        "n_empty_cells": 0,
        "layer": LAYER_LOG1P,
    }
    assert pbmc_small.uns[UNS_KEY]["genes"]["n_recognised"] == 400  # computed when missing


def test_counts_layer_survives_in_place_normalisation(pbmc_small):
    """The usual scanpy steps after prepare must not change the stored counts."""
    counts = _dense(pbmc_small.X)
    sa.pp.prepare(pbmc_small)
    sc.pp.normalize_total(pbmc_small, target_sum=1e4)
    sc.pp.log1p(pbmc_small)
    np.testing.assert_array_equal(_dense(pbmc_small.layers[LAYER_COUNTS]), counts)
    _assert_canonical(pbmc_small, counts)


def test_prepare_noninteger_counts(oligodendroglioma):
    adata = oligodendroglioma.copy()
    expected = _log1p_cp10k(adata.X)
    sa.pp.prepare(adata)
    rec = _record(adata)
    assert (rec["source"], rec["content"], rec["has_counts"]) == ("X", "noninteger_counts", False)
    assert LAYER_COUNTS not in adata.layers  # expected counts are not UMI counts
    np.testing.assert_allclose(_dense(adata.layers[LAYER_LOG1P]), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("target", [1e4, 1e6], ids=["CP10k", "CPM"])
def test_prepare_normalised(pbmc_small, target):
    counts = pbmc_small.X.copy()
    pbmc_small.X = _normalised(counts, target)
    sa.pp.prepare(pbmc_small)
    rec = _record(pbmc_small)
    assert (rec["source"], rec["content"], rec["has_counts"]) == ("X", "normalized", False)
    assert LAYER_COUNTS not in pbmc_small.layers
    _assert_canonical(pbmc_small, counts, rtol=1e-4)


def test_prepare_log1p_normalised(pbmc_small):
    counts = pbmc_small.X.copy()
    sc.pp.normalize_total(pbmc_small, target_sum=1e4)
    sc.pp.log1p(pbmc_small)
    sa.pp.prepare(pbmc_small)
    rec = _record(pbmc_small)
    assert (rec["source"], rec["content"], rec["has_counts"]) == ("X", "log1p_normalized", False)
    _assert_canonical(pbmc_small, counts, rtol=1e-4)


def test_prepare_scaled_with_log_raw():
    """scanpy's pbmc68k_reduced: X is scaled, .raw holds log-normalised values."""
    adata = sc.datasets.pbmc68k_reduced()
    scaled = _dense(adata.X)
    raw = _dense(adata.raw.X)
    assert scaled.min() < 0
    sa.pp.prepare(adata)
    rec = _record(adata)
    assert rec["source"] == ".raw"
    assert rec["content"] == "log1p"  # a gene subset: totals differ, values kept as they are
    assert rec["has_counts"] is False
    assert adata.shape == (700, 765)
    np.testing.assert_allclose(_dense(adata.layers[LAYER_LOG1P]), raw, rtol=1e-6)
    np.testing.assert_array_equal(_dense(adata.X), scaled)
    assert LAYER_COUNTS not in adata.layers


def test_counts_layer_takes_precedence(pbmc_small):
    counts = pbmc_small.X.copy()
    sc.pp.normalize_total(pbmc_small, target_sum=1e4)
    sc.pp.log1p(pbmc_small)
    pbmc_small.layers["counts"] = counts.copy()
    sa.pp.prepare(pbmc_small)
    rec = _record(pbmc_small)
    assert (rec["source"], rec["content"], rec["has_counts"]) == (
        "layers['counts']",
        "counts",
        True,
    )
    _assert_canonical(pbmc_small, counts)
    np.testing.assert_array_equal(_dense(pbmc_small.layers[LAYER_COUNTS]), _dense(counts))


def test_other_counts_layer_name(pbmc_small):
    counts = pbmc_small.X.copy()
    pbmc_small.layers["raw_counts"] = counts.copy()
    pbmc_small.X = _normalised(counts, 1e4)
    sa.pp.prepare(pbmc_small)
    assert _record(pbmc_small)["source"] == "layers['raw_counts']"
    np.testing.assert_array_equal(_dense(pbmc_small.layers[LAYER_COUNTS]), _dense(counts))


def test_raw_counts_take_precedence_over_log_x(pbmc_small):
    counts = pbmc_small.X.copy()
    pbmc_small.raw = pbmc_small.copy()
    sc.pp.normalize_total(pbmc_small, target_sum=1e4)
    sc.pp.log1p(pbmc_small)
    sa.pp.prepare(pbmc_small)
    rec = _record(pbmc_small)
    assert (rec["source"], rec["content"]) == (".raw", "counts")
    _assert_canonical(pbmc_small, counts)


def _scaled_hvg_with_raw_counts(adata: AnnData, n_genes: int = 100) -> AnnData:
    """The classic scanpy object: .raw keeps all genes' counts, X is scaled on a gene subset."""
    adata.raw = adata.copy()  # the raw setter would share X
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sub = adata[:, adata.var_names[-n_genes:]].copy()
    sub.X = _dense(sub.X)
    sc.pp.scale(sub)
    return sub


def test_prepare_swaps_to_raw_genes_in_place(pbmc_small):
    counts = pbmc_small.X.copy()
    genes = list(pbmc_small.var_names)
    obs = pbmc_small.obs.copy()
    adata = _scaled_hvg_with_raw_counts(pbmc_small)
    assert adata.n_vars == 100
    assert sa.pp.prepare(adata) is None
    assert adata.shape == (50, 400)
    assert list(adata.var_names) == genes
    assert list(adata.obs_names) == list(obs.index)
    assert adata.obs["cell_type"].equals(obs["cell_type"])
    rec = _record(adata)
    assert (rec["source"], rec["content"], rec["has_counts"]) == (".raw", "counts", True)
    _assert_canonical(adata, counts)
    np.testing.assert_array_equal(_dense(adata.layers[LAYER_COUNTS]), _dense(counts))
    np.testing.assert_allclose(_dense(adata.X), _log1p_cp10k(counts), rtol=1e-5, atol=1e-5)
    assert adata.uns[UNS_KEY]["genes"]["n_genes"] == 400


def test_prepare_copy_leaves_input_untouched(pbmc_small):
    before = pbmc_small.copy()
    out = sa.pp.prepare(pbmc_small, copy=True)
    assert out is not pbmc_small
    assert LAYER_LOG1P in out.layers
    assert list(pbmc_small.layers) == []
    assert UNS_KEY not in pbmc_small.uns
    assert list(pbmc_small.var.columns) == list(before.var.columns)
    np.testing.assert_array_equal(_dense(pbmc_small.X), _dense(before.X))
    # the copy owns its data: changing it leaves the input alone
    out.layers[LAYER_COUNTS].data[:] = 0
    np.testing.assert_array_equal(_dense(pbmc_small.X), _dense(before.X))


def test_prepare_copy_with_raw_swap_leaves_input_untouched(pbmc_small):
    pbmc_small.uns[UNS_KEY] = {"read": {"path": "pbmc.h5ad", "format": "h5ad"}}
    adata = _scaled_hvg_with_raw_counts(pbmc_small)
    before = adata.copy()
    uns_before = copy.deepcopy(dict(adata.uns[UNS_KEY]))
    out = sa.pp.prepare(adata, copy=True)
    assert out.shape == (50, 400)
    assert adata.shape == (50, 100)
    assert dict(adata.uns[UNS_KEY]) == uns_before
    assert list(adata.var_names) == list(before.var_names)
    assert adata.raw is not None and adata.raw.shape == (50, 400)
    np.testing.assert_array_equal(_dense(adata.X), _dense(before.X))
    assert out.uns[UNS_KEY]["read"] == uns_before["read"]
    out.layers[LAYER_COUNTS].data[:] = 0
    np.testing.assert_array_equal(_dense(adata.raw.X), _dense(before.raw.X))


def test_prepare_empty_cell(pbmc_small):
    X = _dense(pbmc_small.X)
    X[4] = 0
    pbmc_small.X = sp.csr_matrix(X.astype(np.float32))
    sa.pp.prepare(pbmc_small)
    assert _record(pbmc_small)["n_empty_cells"] == 1
    assert _dense(pbmc_small.layers[LAYER_LOG1P])[4].sum() == 0
    _assert_canonical(pbmc_small, X)


def test_prepare_after_read_keeps_gene_report(pbmc_small, tmp_path):
    path = tmp_path / "pbmc.h5ad"
    pbmc_small.write_h5ad(path)
    adata = sa.read(path)
    report = dict(adata.uns[UNS_KEY]["genes"])
    sa.pp.prepare(adata)
    assert adata.uns[UNS_KEY]["genes"] == report
    assert adata.uns[UNS_KEY]["read"]["format"] == "h5ad"
    _assert_canonical(adata, pbmc_small.X)


def test_log1p_cp10k_rejects_scaled(pbmc_small):
    with pytest.raises(ValueError, match=r"Cannot normalise content 'scaled'"):
        sa.pp.log1p_cp10k(pbmc_small.X, "scaled")


# --- bad input -------------------------------------------------------------------------------


def test_prepare_scaled_without_counts(pbmc_small):
    sc.pp.normalize_total(pbmc_small, target_sum=1e4)
    sc.pp.log1p(pbmc_small)
    pbmc_small.X = _dense(pbmc_small.X)
    sc.pp.scale(pbmc_small)
    with pytest.raises(
        sa.InputDataError,
        match=r"No usable expression values: X holds scaled\. .*not scaled data with negatives\. "
        r"Put the raw counts in adata\.layers\['counts'\] or adata\.raw",
    ):
        sa.pp.prepare(pbmc_small)


def test_prepare_scaled_raw_and_x(pbmc_small):
    pbmc_small.X = _dense(pbmc_small.X)
    sc.pp.scale(pbmc_small)
    pbmc_small.raw = pbmc_small.copy()
    with pytest.raises(sa.InputDataError, match=r"\.raw holds scaled, X holds scaled"):
        sa.pp.prepare(pbmc_small)


def test_prepare_too_few_recognised_genes(pbmc_small):
    few = pbmc_small[:, :150].copy()
    with pytest.raises(
        sa.InputDataError, match=r"Only 150 of 150 genes .* at least 200 are needed"
    ):
        sa.pp.prepare(few)


def test_prepare_too_few_genes_in_existing_report(pbmc_small, tmp_path, monkeypatch):
    monkeypatch.setattr(sa.settings, "min_recognised_genes", 100)
    path = tmp_path / "few.h5ad"
    pbmc_small[:, :150].copy().write_h5ad(path)
    adata = sa.read(path)
    monkeypatch.setattr(sa.settings, "min_recognised_genes", 200)
    with pytest.raises(
        sa.InputDataError, match=r"Only 150 of 150 genes .* at least 200 are needed"
    ):
        sa.pp.prepare(adata)


def test_prepare_nan(pbmc_small):
    X = _dense(pbmc_small.X)
    X[2, 3] = np.nan
    pbmc_small.X = X
    with pytest.raises(sa.InputDataError, match=r"the data contains 1 NaN and 0 infinite values"):
        sa.pp.prepare(pbmc_small)


def test_prepare_inf(pbmc_small):
    pbmc_small.X.data[0] = np.inf
    with pytest.raises(
        sa.InputDataError, match=r"0 NaN and 1 infinite values.*Expression must be finite"
    ):
        sa.pp.prepare(pbmc_small)


def test_prepare_zero_cells(pbmc_small):
    with pytest.raises(sa.InputDataError, match=r"the data is empty: 0 cells x 400 genes"):
        sa.pp.prepare(pbmc_small[:0].copy())


def test_prepare_all_zero(pbmc_small):
    pbmc_small.X = sp.csr_matrix(pbmc_small.shape, dtype=np.float32)
    with pytest.raises(sa.InputDataError, match=r"every value is zero"):
        sa.pp.prepare(pbmc_small)


def test_prepare_duplicated_cells(pbmc_small):
    pbmc_small.obs_names = [*pbmc_small.obs_names[:-1], pbmc_small.obs_names[0]]
    with pytest.raises(
        sa.InputDataError, match=r"1 duplicated cell ids.*obs_names_make_unique\(\)"
    ):
        sa.pp.prepare(pbmc_small)


def test_prepare_mouse(mouse_atlas):
    adata = mouse_atlas[:60].copy()
    sa.pp.prepare(adata)
    assert adata.uns[UNS_KEY]["genes"]["species"] == "mouse"
    assert _record(adata)["content"] == "counts"
    _assert_canonical(adata, mouse_atlas[:60].X)
