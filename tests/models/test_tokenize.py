import numpy as np
import scipy.sparse as sp

from scagent.models import GeneVocab, bin_values, tokenize


def test_bin_values_is_rank_based_and_monotone_invariant():
    v = np.array([1.0, 2.0, 2.0, 5.0, 9.0, 30.0])
    b = bin_values(v, 51)
    assert b.min() >= 1 and b.max() <= 50
    assert np.all(np.diff(b[np.argsort(v)]) >= 0)
    assert b[1] == b[2]
    np.testing.assert_array_equal(b, bin_values(np.log1p(v), 51))


def test_tokenize_keeps_each_cells_own_top_genes():
    vocab = GeneVocab.from_genes(["A", "B", "C", "D", "E"])
    genes = ["A", "B", "X", "C", "D", "E"]  # X is not in the vocabulary
    X = sp.csr_matrix(
        np.array(
            [
                [5, 0, 9, 1, 0, 3],  # X is skipped; top-3 of A,C,E by value: A, E, C
                [0, 0, 0, 0, 0, 0],  # no gene: only <cls>
                [1, 2, 0, 0, 0, 0],
            ],
            dtype=np.float32,
        )
    )
    batch, lengths = tokenize(
        X,
        vocab.ids(genes),
        max_len=3,
        n_bins=51,
        cls_id=vocab.cls_id,
        pad_id=vocab.pad_id,
        pad_value=-2.0,
    )
    np.testing.assert_array_equal(lengths, [2, 0, 2])
    g = batch.genes.numpy()
    assert g[0, 0] == vocab.cls_id
    assert list(g[0, 1:]) == [vocab["A"], vocab["E"]]  # max_len 3 = <cls> + 2 genes
    assert list(g[1, 1:]) == [vocab.pad_id, vocab.pad_id]
    assert batch.padding[1, 1:].all() and not batch.padding[:, 0].any()
    v = batch.values.numpy()
    assert v[0, 0] == -2.0 and v[0, 1] > v[0, 2]  # A (5) binned above E (3)
    assert set(v[1, 1:]) == {-2.0}


def test_vocab_roundtrip(tmp_path):
    vocab = GeneVocab.from_genes(["CD3E", "MS4A1"])
    vocab.save(tmp_path / "vocab.json")
    again = GeneVocab.from_file(tmp_path / "vocab.json")
    assert again.token_to_id == vocab.token_to_id
    assert list(again.ids(["MS4A1", "nope", "<cls>"])) == [vocab["MS4A1"], -1, -1]
