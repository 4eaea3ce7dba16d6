"""Tokenisation against scGPT's published algorithm, on real cells.

The reference below is written from scGPT's released code as described (scgpt/preprocess.py
``_digitize(side="both")`` and ``binning``; scgpt/data_collator.py ``DataCollator`` with
``do_binning=True, sampling=True, keep_first_n_tokens=1``; scgpt/tasks/cell_emb.py
``embed_data``), not from scagent's code:

- a cell's tokens are ``<cls>`` (value ``pad_value``) and its non-zero genes among those in
  the vocabulary, in column order;
- the non-zero values are binned per cell, before any gene sampling: quantile edges
  ``np.quantile(values, np.linspace(0, 1, n_bins - 1))``; ``left = np.digitize(x, edges)``,
  ``right = np.digitize(x, edges, right=True)``; bin ``ceil(r * (right - left) + left)``
  with ``r = np.random.rand(len(values))``, drawn cell after cell;
- a cell with more tokens than ``max_length`` keeps ``<cls>`` and a random subset.
"""

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import scagent as sa
from scagent.models import (
    GeneVocab,
    bin_values,
    canonical_matrix,
    merge_duplicate_genes,
    model_input,
    tokenize,
)

N_BINS, PAD_VALUE = 51, -2.0


def scgpt_digitize(x: np.ndarray, bins: np.ndarray, rands: np.ndarray) -> np.ndarray:
    left = np.digitize(x, bins)
    right = np.digitize(x, bins, right=True)
    return np.ceil(rands * (right - left) + left).astype(np.int64)


def scgpt_binning(row: np.ndarray, n_bins: int, rands: np.ndarray) -> np.ndarray:
    """scGPT's ``binning`` of a row of non-zero values (the ``embed_data`` case)."""
    bins = np.quantile(row, np.linspace(0, 1, n_bins - 1))
    return scgpt_digitize(row, bins, rands)


def scgpt_cell_tokens(counts_row, vocab_ids, cls_id, state: np.random.RandomState):
    """One cell as scGPT's embed_data Dataset + DataCollator builds it (no sampling)."""
    nz = np.nonzero(counts_row)[0]
    values = counts_row[nz].astype(np.float32)  # torch ``.float()``
    genes = np.insert(vocab_ids[nz], 0, cls_id)
    binned = scgpt_binning(values, N_BINS, state.rand(len(values)))
    return genes, np.insert(binned.astype(np.float32), 0, PAD_VALUE)


@pytest.fixture(scope="module")
def pbmc3k(shared_data):
    """PBMC3k raw counts restricted to genes of the default encoder's vocabulary."""
    adata = ad.read_h5ad(shared_data / "labelled" / "pbmc3k_10x.h5ad")
    vocab = sa.models.load_encoder().vocab
    ids = vocab.ids(adata.var_names)
    keep = ids >= 0
    return sp.csr_matrix(adata.X[:, keep], dtype=np.float32), ids[keep], vocab


def _tok(X, ids, vocab, **kw):
    kw = {"max_len": 5000, "n_bins": N_BINS, "pad_value": PAD_VALUE} | kw
    return tokenize(X, ids, cls_id=vocab.cls_id, pad_id=vocab.pad_id, **kw)


def _cell(batch, i):
    keep = ~batch.padding[i].numpy()
    return batch.genes[i].numpy()[keep], batch.values[i].numpy()[keep]


def test_tokens_equal_scgpt_on_real_cells(pbmc3k):
    X, ids, vocab = pbmc3k
    batch, lengths = _tok(
        X, ids, vocab, selection="sample", log1p=False, rng=np.random.RandomState(7)
    )
    state = np.random.RandomState(7)
    dense = X.toarray()
    for i in range(X.shape[0]):
        genes, values = scgpt_cell_tokens(dense[i], ids, vocab.cls_id, state)
        got_genes, got_values = _cell(batch, i)
        np.testing.assert_array_equal(got_genes, genes)
        np.testing.assert_array_equal(got_values, values)
    assert lengths.sum() == X.nnz


def test_tokens_equal_scgpt_on_atlas_cells(atlas):
    """The same check on cells of every tissue of the bundled atlas (no shared data needed)."""
    vocab = sa.models.load_encoder().vocab
    cells = atlas[:: atlas.n_obs // 300]
    ids = vocab.ids(cells.var_names)
    X = sp.csr_matrix(cells.X[:, ids >= 0], dtype=np.float32)
    ids = ids[ids >= 0]
    batch, _ = _tok(X, ids, vocab, selection="sample", log1p=False, rng=np.random.RandomState(1))
    state = np.random.RandomState(1)
    dense = X.toarray()
    for i in range(X.shape[0]):
        genes, values = scgpt_cell_tokens(dense[i], ids, vocab.cls_id, state)
        got_genes, got_values = _cell(batch, i)
        np.testing.assert_array_equal(got_genes, genes)
        np.testing.assert_array_equal(got_values, values)


def test_bins_do_not_depend_on_the_scale(pbmc3k):
    """Counts and log1p(CP10k) of the same cells give the same bins (same random numbers)."""
    X, ids, vocab = pbmc3k
    X = X[:300]
    logn = sp.csr_matrix(sp.diags(1e4 / np.asarray(X.sum(1)).ravel()) @ X, dtype=np.float32)
    logn.data = np.log1p(logn.data)
    a, _ = _tok(X, ids, vocab, log1p=False, rng=np.random.default_rng(0))
    b, _ = _tok(logn, ids, vocab, log1p=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a.genes, b.genes)
    np.testing.assert_array_equal(a.values, b.values)


def test_range_and_ties_as_scgpt(pbmc3k):
    X, ids, vocab = pbmc3k
    batch, _ = _tok(X, ids, vocab)
    v = batch.values.numpy()[~batch.padding.numpy()]
    v = v[v != PAD_VALUE]
    assert v.min() == 1 and v.max() == N_BINS - 1  # bin 50 is reached
    # a cell's many genes with count 1 spread over the low bins instead of all in bin 1
    row = X[0].toarray().ravel()
    ones = np.flatnonzero(row == 1)
    assert len(ones) > 100
    genes, values = _cell(batch, 0)
    one_bins = values[np.isin(genes, ids[ones])]
    share = len(ones) / np.count_nonzero(row)
    top_bin = np.ceil(share * (N_BINS - 2))  # the ones fill the first ~share of the bins
    assert one_bins.min() == 1 and one_bins.max() >= top_bin - 1
    assert len(np.unique(one_bins)) >= top_bin - 1
    assert abs(one_bins.mean() - (1 + top_bin) / 2) < 2  # spread evenly


def test_same_cell_same_tokens_in_any_batch(pbmc3k):
    X, ids, vocab = pbmc3k
    X = X[:200]
    whole, _ = _tok(X, ids, vocab, selection="sample", max_len=300)
    order = np.random.default_rng(0).permutation(200)
    parts = [order[:17], order[17:90], order[90:]]
    for part in parts:
        sub, _ = _tok(X[part], ids, vocab, selection="sample", max_len=300)
        for j, i in enumerate(part):
            g, v = _cell(sub, j)
            g0, v0 = _cell(whole, i)
            np.testing.assert_array_equal(g, g0)
            np.testing.assert_array_equal(v, v0)
    again, _ = _tok(X, ids, vocab, selection="sample", max_len=300)
    np.testing.assert_array_equal(again.values, whole.values)
    other_seed, _ = _tok(X, ids, vocab, selection="sample", max_len=300, seed=1)
    assert not np.array_equal(other_seed.values, whole.values)


def test_sampling_bins_over_all_genes_then_keeps_a_random_subset(pbmc3k):
    """scGPT: binning first (over all the cell's genes), then sampling max_len - 1 genes."""
    X, ids, vocab = pbmc3k
    X = X[:100]
    full, full_len = _tok(X, ids, vocab, selection="sample")
    cut, cut_len = _tok(X, ids, vocab, selection="sample", max_len=200)
    np.testing.assert_array_equal(cut_len, np.minimum(full_len, 199))
    top, _ = _tok(X, ids, vocab, selection="top", max_len=200)
    long_cells = np.flatnonzero(full_len > 400)
    assert len(long_cells) > 10
    mean_rank = []
    for i in long_cells:
        g_full, v_full = _cell(full, i)
        g_cut, v_cut = _cell(cut, i)
        assert g_cut[0] == vocab.cls_id and len(set(g_cut)) == len(g_cut) == 200
        lookup = dict(zip(g_full[1:], v_full[1:]))
        assert all(lookup[g] == v for g, v in zip(g_cut[1:], v_cut[1:]))
        # a uniform subset: its genes' expression ranks average near the middle
        counts = X[i].toarray().ravel()
        by_gene = dict(zip(ids, counts))
        expr = np.array([by_gene[g] for g in g_full[1:]])
        kept = np.isin(g_full[1:], g_cut[1:])
        ranks = expr.argsort().argsort() / (len(expr) - 1)
        mean_rank.append(ranks[kept].mean())
        # "top" keeps the most expressed instead and bins over the kept genes
        g_top, v_top = _cell(top, i)
        kept_top = np.array([by_gene[g] for g in g_top[1:]])
        assert kept_top.min() >= np.sort(expr)[-199]
        assert v_top[1:].max() == N_BINS - 1
    assert 0.4 < np.mean(mean_rank) < 0.6


def test_top_selection_bins_the_kept_genes_as_scgpt(pbmc3k):
    X, ids, vocab = pbmc3k
    X = X[:50]
    batch, _ = _tok(
        X, ids, vocab, selection="top", max_len=101, log1p=False, rng=np.random.RandomState(3)
    )
    state = np.random.RandomState(3)
    for i in range(50):
        row = X[i].toarray().ravel()
        nz = np.flatnonzero(row)
        top = nz[np.lexsort((nz, -row[nz]))[:100]]
        top.sort()
        binned = scgpt_binning(row[top], N_BINS, state.rand(len(top)))
        g, v = _cell(batch, i)
        np.testing.assert_array_equal(g[1:], ids[top])
        np.testing.assert_array_equal(v[1:], binned)


def test_bin_values_takes_explicit_random_numbers():
    v = np.array([1.0, 2.0, 2.0, 2.0, 5.0, 9.0, 30.0], dtype=np.float32)
    u = np.array([0.0, 0.1, 0.5, 0.99, 0.3, 0.3, 0.3])
    np.testing.assert_array_equal(bin_values(v, N_BINS, uniforms=u), scgpt_binning(v, N_BINS, u))
    np.testing.assert_array_equal(bin_values(v, N_BINS), bin_values(v, N_BINS))  # reproducible
    np.testing.assert_array_equal(
        bin_values(np.log1p(v), N_BINS, uniforms=u), scgpt_binning(v, N_BINS, u)
    )
    with pytest.raises(ValueError, match="must be positive"):
        bin_values(np.array([0.0, 1.0]), N_BINS)
    with pytest.raises(ValueError, match="uniforms has 2 numbers for 7 values"):
        bin_values(v, N_BINS, uniforms=u[:2])


def test_tokenize_keeps_each_cells_own_top_genes():
    vocab = GeneVocab.from_genes(["A", "B", "C", "D", "E"])
    genes = ["A", "B", "X", "C", "D", "E"]  # X is not in the vocabulary
    X = sp.csr_matrix(
        np.array(
            [
                [5, 0, 9, 1, 0, 3],  # X is skipped; top-2 of A,C,E by value: A, E
                [0, 0, 0, 0, 0, 0],  # no gene: only <cls>
                [1, 2, 0, 0, 0, 0],
            ],
            dtype=np.float32,
        )
    )
    batch, lengths = _tok(X, vocab.ids(genes), vocab, max_len=3)
    np.testing.assert_array_equal(lengths, [2, 0, 2])
    g = batch.genes.numpy()
    assert g[0, 0] == vocab.cls_id
    assert list(g[0, 1:]) == [vocab["A"], vocab["E"]]  # max_len 3 = <cls> + 2 genes
    assert list(g[1, 1:]) == [vocab.pad_id, vocab.pad_id]
    assert batch.padding[1, 1:].all() and not batch.padding[:, 0].any()
    v = batch.values.numpy()
    assert v[0, 0] == PAD_VALUE and list(v[0, 1:]) == [50, 1]  # A (5) max bin, E (3) min
    assert set(v[1, 1:]) == {PAD_VALUE}
    with pytest.raises(ValueError, match="selection must be one of"):
        _tok(X, vocab.ids(genes), vocab, selection="random")


def test_genes_sharing_a_token_are_merged():
    vocab = GeneVocab.from_genes(["A", "B", "C"])
    genes = ["A", "B", "B", "C"]  # B measured twice (duplicated symbol)
    counts = np.array([[3, 1, 2, 0], [0, 4, 0, 7], [1, 0, 0, 1]], dtype=np.float32)
    logn = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4).astype(np.float32)
    X, ids = merge_duplicate_genes(logn, vocab.ids(genes))
    assert sorted(ids) == [vocab["A"], vocab["B"], vocab["C"]]
    merged = X.toarray()[:, list(ids).index(vocab["B"])]
    expected = np.log1p(np.expm1(logn[:, 1].astype(float)) + np.expm1(logn[:, 2]))
    np.testing.assert_allclose(merged, expected, rtol=1e-6)
    by_hand = np.stack([logn[:, 0], expected, logn[:, 3]], axis=1).astype(np.float32)
    batch, lengths = _tok(sp.csr_matrix(logn), vocab.ids(genes), vocab)
    again, _ = _tok(sp.csr_matrix(by_hand), vocab.ids(["A", "B", "C"]), vocab)
    np.testing.assert_array_equal(lengths, [2, 2, 2])
    for i in range(3):
        g, v = _cell(batch, i)
        g2, v2 = _cell(again, i)
        assert len(set(g)) == len(g)
        assert dict(zip(g, v)) == dict(zip(g2, v2))
    # counts are summed as they are
    Xc, _ = merge_duplicate_genes(counts, vocab.ids(genes), log1p=False)
    assert sorted(Xc.toarray()[0]) == [0, 3, 3]


def test_mouse_genes_with_one_human_orthologue_are_merged(mouse_atlas):
    enc = sa.models.load_encoder()
    X, ids, n_in = model_input(mouse_atlas, enc)
    assert len(np.unique(ids)) == len(ids) == X.shape[1] < n_in  # some genes were merged
    batch, _ = enc.tokenize(X, ids, max_len=5000)
    for i in range(0, mouse_atlas.n_obs, 25):
        g, _ = _cell(batch, i)
        assert len(set(g)) == len(g)
    # a merged orthologue carries the summed expression of its mouse genes
    mouse = sa.knowledge.gene_table().mouse_to_human
    human = np.array([mouse.get(str(g), "") for g in mouse_atlas.var_names])
    names, counts = np.unique(human[human != ""], return_counts=True)
    shared = [h for h in names[counts > 1] if h in enc.vocab]
    assert shared
    h = shared[0]
    logn, _ = canonical_matrix(mouse_atlas)
    lin = np.expm1(logn[:, human == h].toarray().astype(float))
    col = X[:, list(ids).index(enc.vocab[h])].toarray().ravel()
    np.testing.assert_allclose(col, np.log1p(lin.sum(1)), rtol=1e-5)


def test_vocab_roundtrip(tmp_path):
    vocab = GeneVocab.from_genes(["CD3E", "MS4A1"])
    vocab.save(tmp_path / "vocab.json")
    again = GeneVocab.from_file(tmp_path / "vocab.json")
    assert again.token_to_id == vocab.token_to_id
    assert list(again.ids(["MS4A1", "nope", "<cls>"])) == [vocab["MS4A1"], -1, -1]
