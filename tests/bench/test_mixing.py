import numpy as np
import pytest

from scagent.bench._mixing import ilisi


def _two_batches(offset: float, n: int = 600, dim: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim))
    batch = np.repeat(["a", "b"], n // 2)
    X[batch == "b"] += offset
    return X, batch


def test_same_distribution_is_well_mixed():
    X, batch = _two_batches(0.0)
    score = ilisi(X, batch)
    assert 0.8 < score <= 1.0
    # unscaled value is between 1 and the number of batches
    raw = ilisi(X, batch, scale=False)
    assert raw == pytest.approx(1 + score)


def test_separated_batches_are_not_mixed():
    X, batch = _two_batches(50.0)
    assert ilisi(X, batch) < 0.05
    assert ilisi(X, batch, scale=False) == pytest.approx(1.0, abs=0.05)


def test_three_interleaved_batches_reach_three():
    # cells on a line, batches cycling a, b, c: every neighbourhood is balanced
    X = np.arange(900, dtype=float)[:, None]
    batch = np.tile(["a", "b", "c"], 300)
    raw = ilisi(X, batch, scale=False)
    assert 2.9 < raw <= 3.0
    assert ilisi(X, batch) == pytest.approx((raw - 1) / 2)


def test_uniform_weights_when_perplexity_exceeds_neighbours():
    # perplexity above the neighbour count: the kernel flattens and LISI counts batches
    # among all other cells, (n/3 - 1, n/3, n/3) of them
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    batch = np.tile([0, 1, 2], 100)
    expected = 299**2 / (99**2 + 100**2 + 100**2)
    assert ilisi(X, batch, perplexity=1000, scale=False) == pytest.approx(expected, rel=1e-4)


def test_partial_mixing_is_in_between():
    mixed = ilisi(*_two_batches(0.0))
    partial = ilisi(*_two_batches(0.8))
    apart = ilisi(*_two_batches(50.0))
    assert apart < partial < mixed


def test_n_neighbors_and_labels_of_any_type():
    X, batch = _two_batches(0.0, n=200)
    codes = (batch == "b").astype(int)
    assert ilisi(X, codes, n_neighbors=20, perplexity=5) == pytest.approx(
        ilisi(X, batch, n_neighbors=20, perplexity=5)
    )


@pytest.mark.parametrize(
    ("X", "batch", "match"),
    [
        (np.zeros((10, 2)), ["a"] * 10, "at least 2 batches"),
        (np.zeros((10, 2)), ["a", "b"] * 4, "must match"),
        (np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]), ["a", "b", "a"], "NaN"),
        (np.zeros(10), ["a", "b"] * 5, "2-D"),
    ],
)
def test_bad_input(X, batch, match):
    with pytest.raises(ValueError, match=match):
        ilisi(X, batch)


def test_bad_parameters():
    X, batch = _two_batches(0.0, n=50)
    with pytest.raises(ValueError, match="perplexity"):
        ilisi(X, batch, perplexity=0)
    with pytest.raises(ValueError, match="n_neighbors"):
        ilisi(X, batch, n_neighbors=0)
