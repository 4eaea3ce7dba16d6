"""Turn expression rows into scGPT token sequences: gene ids and binned values.

Binning follows scGPT's released preprocessing exactly (``scgpt/preprocess.py``:
``binning`` and ``_digitize(side="both")``): per cell, the non-zero values are cut at
``n_bins - 1`` quantile edges (``np.quantile(values, np.linspace(0, 1, n_bins - 1))``) and
each value gets a bin in 1..``n_bins - 1``; a value equal to one or more edges falls
uniformly at random into one of the bins those edges bound, so tied values spread over
their bins instead of all landing in the lowest one.

scGPT draws these random numbers from the global NumPy state, so a cell's tokens depend on
everything tokenised before it. Here each cell's random numbers come from a hash of its
own content (gene ids and values) and a seed: the same cell gets the same tokens in any
batch, any order and any process. Pass ``rng`` to draw them from a generator instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["SELECTIONS", "TokenBatch", "bin_values", "merge_duplicate_genes", "tokenize"]

#: How a cell with more expressed genes than tokens is cut: ``"top"`` keeps the most
#: expressed genes and bins over them (scagent's own encoders); ``"sample"`` bins over all
#: genes, then keeps a random subset (scGPT's ``DataCollator(sampling=True)``).
SELECTIONS = ("top", "sample")

_U64 = np.uint64
_SALT_TIES = _U64(0x5443_4753_5449_4553)  # stream of the tie-spreading numbers
_SALT_SAMPLE = _U64(0x5443_4753_414D_504C)  # stream of the gene-sampling keys


@dataclass
class TokenBatch:
    """A padded batch of token sequences (tensors on the CPU).

    Attributes
    ----------
    genes
        (cells, seq) token ids, ``<cls>`` first, then ``<pad>``.
    values
        (cells, seq) float: expression bins 1..n_bins-1, ``pad_value`` at ``<cls>``
        and padding.
    padding
        (cells, seq) bool, True at padding.
    """

    genes: torch.Tensor
    values: torch.Tensor
    padding: torch.Tensor

    def __len__(self) -> int:
        return len(self.genes)

    def take(self, idx) -> TokenBatch:
        """The cells at ``idx`` (positions, a boolean mask or a slice)."""
        if not isinstance(idx, slice):
            idx = torch.as_tensor(idx)
        return TokenBatch(self.genes[idx], self.values[idx], self.padding[idx])


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser of a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def _cell_keys(indptr: np.ndarray, ids: np.ndarray, values: np.ndarray, seed: int) -> np.ndarray:
    """One uint64 per cell from its (gene id, float32 value) pairs, independent of their order."""
    item = _mix((ids.astype(_U64) << _U64(32)) | values.view(np.uint32).astype(_U64))
    with np.errstate(over="ignore"):
        total = np.concatenate([np.zeros(1, _U64), np.cumsum(item, dtype=_U64)])
        per_cell = total[indptr[1:]] - total[indptr[:-1]]
    seed_key = _mix(np.array([seed & 0xFFFF_FFFF_FFFF_FFFF], dtype=_U64))
    return _mix(per_cell ^ seed_key)


def _streams(keys: np.ndarray, rows: np.ndarray, ids: np.ndarray, salt: np.uint64) -> np.ndarray:
    """A uint64 per (cell, gene): the same gene of the same cell always gets the same."""
    with np.errstate(over="ignore"):
        return _mix(keys[rows] ^ (ids.astype(_U64) * _U64(0xD1B54A32D192ED03) + salt))


def _uniform(bits: np.ndarray) -> np.ndarray:
    """uint64 -> float64 uniform in [0, 1) (53 bits)."""
    return (bits >> _U64(11)).astype(np.float64) * 2.0**-53


def _bin_rows(
    values: np.ndarray, indptr: np.ndarray, uniforms: np.ndarray, n_bins: int
) -> np.ndarray:
    """scGPT's binning of every row segment at once (the result of a per-row loop).

    For row ``i`` (``values[indptr[i]:indptr[i+1]]``, all > 0, float32) this returns,
    in the same order, ``ceil(u * (right - left) + left)`` with ``left`` and ``right``
    ``np.digitize`` of the values against ``np.quantile(row, linspace(0, 1, n_bins - 1))``
    (``right=False`` and ``right=True``): the edges are computed with the same floating
    point operations as NumPy's ``quantile`` (method ``"linear"``), and the digitising is
    done by counting edges below each value's rank, so the bins are bit-for-bit scGPT's.
    """
    n = np.diff(indptr)
    n_rows, total = len(n), len(values)
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.repeat(np.arange(n_rows), n)
    # sort each row's values (non-negative float32 bits sort like the values)
    key = (rows.astype(_U64) << _U64(32)) | values.view(np.uint32).astype(_U64)
    order = np.argsort(key, kind="stable")
    s = values[order]
    starts = indptr[:-1]
    # runs of equal values within a row: first and one-past-last position of each run
    new = np.empty(total, dtype=bool)
    new[0] = True
    new[1:] = s[1:] != s[:-1]
    new[starts[n > 0]] = True
    run_start = np.flatnonzero(new)
    run_id = np.cumsum(new) - 1
    tie_start = run_start[run_id]
    tie_end = np.append(run_start[1:], total)[run_id]
    # quantile edges, as numpy.quantile computes them (linear method)
    has = n > 0
    q = np.linspace(0, 1, n_bins - 1)
    cnt = n[has][:, None]
    virtual = (cnt - 1) * q
    prev = np.floor(virtual)
    above = virtual >= cnt - 1
    prev_i = np.where(above, cnt - 1, prev).astype(np.int64)
    next_i = np.where(above, cnt - 1, prev + 1).astype(np.int64)
    gamma = virtual - np.where(above, -1.0, prev)
    base = starts[has][:, None]
    a, b = s[base + prev_i], s[base + next_i]
    diff = (b - a).astype(np.float64)  # float32 subtraction, as numpy's _lerp
    edges = np.where(gamma >= 0.5, b.astype(np.float64) - diff * (1 - gamma), a + diff * gamma)
    # per edge: how many of the row's values are < edge (lo) and <= edge (hi)
    lo = np.where(edges > a, prev_i + 1, tie_start[base + prev_i] - base)
    hi = np.where(edges < b, next_i, tie_end[base + next_i] - base)
    # digitize: left = #edges <= value = #{edges: lo <= rank}; right likewise with hi
    slot = np.arange(total) + rows
    n_edges_before = (n_bins - 1) * (np.cumsum(has) - has)[rows]
    offsets = (starts + np.arange(n_rows))[has][:, None]
    size = total + n_rows
    left = np.cumsum(np.bincount((offsets + lo).ravel(), minlength=size))[slot]
    right = np.cumsum(np.bincount((offsets + hi).ravel(), minlength=size))[slot]
    left = left - n_edges_before
    right = right - n_edges_before
    digits = np.ceil(uniforms[order] * (right - left) + left).astype(np.int64)
    out = np.empty(total, dtype=np.int64)
    out[order] = digits
    return out


def bin_values(
    values: np.ndarray,
    n_bins: int,
    *,
    uniforms: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """One cell's non-zero values to scGPT's expression bins 1..``n_bins - 1``.

    Parameters
    ----------
    values
        The cell's non-zero expression values (any monotone scale: counts and
        log1p(CP10k) give the same bins).
    n_bins
        Number of bins including the zero bin (scGPT: 51).
    uniforms
        Random numbers in [0, 1), one per value, that place tied values among their bins
        (scGPT's ``np.random.rand``). Default: derived from ``seed`` and the values, so a
        cell always gets the same bins.
    seed
        Seed of the default random numbers.

    Returns
    -------
    float32 bins, in the order of ``values``.
    """
    values = np.asarray(values, dtype=np.float32).ravel()
    if np.any(~(values > 0)):
        msg = "bin_values takes a cell's non-zero values: all values must be positive."
        raise ValueError(msg)
    indptr = np.array([0, len(values)])
    if uniforms is None:
        ids = np.arange(len(values), dtype=np.int64)
        keys = _cell_keys(indptr, ids, values, seed)
        uniforms = _uniform(_streams(keys, np.zeros(len(values), np.int64), ids, _SALT_TIES))
    uniforms = np.asarray(uniforms, dtype=np.float64).ravel()
    if uniforms.shape != values.shape:
        msg = f"uniforms has {uniforms.size} numbers for {values.size} values."
        raise ValueError(msg)
    return _bin_rows(values, indptr, uniforms, n_bins).astype(np.float32)


def merge_duplicate_genes(X, gene_ids: np.ndarray, *, log1p: bool = True):
    """One column per vocabulary id: genes that share an id are summed, unknown genes dropped.

    Several genes can map to one token (mouse paralogues onto one human orthologue,
    duplicated symbols); tokenising each would put the same token in a cell twice. Their
    linear values are summed: with ``log1p``, ``log1p(sum(expm1(x)))``, otherwise ``sum(x)``.
    Columns with a unique id are returned unchanged, in their order, before the merged ones.

    Parameters
    ----------
    X
        (cells, genes) expression, sparse or dense.
    gene_ids
        Vocabulary id of each column, -1 for genes outside the vocabulary.
    log1p
        Whether ``X`` is log1p-transformed (e.g. log1p(CP10k)); otherwise linear (counts).

    Returns
    -------
    The CSR float32 matrix and the vocabulary id of each of its columns (all distinct).
    """
    gene_ids = np.asarray(gene_ids, dtype=np.int64)
    X = sp.csr_matrix(X, dtype=np.float32)
    cols = np.flatnonzero(gene_ids >= 0)
    uniq, inv, counts = np.unique(gene_ids[cols], return_inverse=True, return_counts=True)
    dup = counts[inv] > 1
    if not dup.any():
        if len(cols) < X.shape[1]:
            X = X[:, cols]
        return X, gene_ids[cols]
    single = X[:, cols[~dup]]
    groups, group_of = np.unique(inv[dup], return_inverse=True)
    part = sp.csr_matrix(X[:, cols[dup]], dtype=np.float64)
    if log1p:
        part.data = np.expm1(part.data)
    indicator = sp.csr_matrix(
        (np.ones(len(group_of)), (np.arange(len(group_of)), group_of)),
        shape=(len(group_of), len(groups)),
    )
    merged = sp.csr_matrix(part @ indicator)
    if log1p:
        merged.data = np.log1p(merged.data)
    out = sp.hstack([single, merged.astype(np.float32)], format="csr")
    return out, np.concatenate([gene_ids[cols[~dup]], uniq[groups]])


def _keep_per_row(rows: np.ndarray, rank: np.ndarray, n_rows: int, limit: int) -> np.ndarray:
    """Mask of the ``limit`` entries of lowest ``rank`` (uint32) in each row.

    Ties keep the earlier entries (column order), so the result is deterministic.
    """
    keep = np.ones(len(rows), dtype=bool)
    long_rows = np.bincount(rows, minlength=n_rows) > limit
    if not long_rows.any():
        return keep
    pos = np.flatnonzero(long_rows[rows])
    r = rows[pos]
    order = np.argsort((r.astype(_U64) << _U64(32)) | rank[pos].astype(_U64), kind="stable")
    sorted_rows = r[order]
    first = np.searchsorted(sorted_rows, sorted_rows, side="left")
    keep[pos[order[np.arange(len(order)) - first >= limit]]] = False
    return keep


def tokenize(
    X,
    gene_ids: np.ndarray,
    *,
    max_len: int,
    n_bins: int,
    cls_id: int,
    pad_id: int,
    pad_value: float,
    selection: str = "top",
    log1p: bool = True,
    seed: int = 0,
    rng: np.random.Generator | np.random.RandomState | None = None,
) -> tuple[TokenBatch, np.ndarray]:
    """Tokenise cells: ``<cls>`` (value ``pad_value``) then the cell's own expressed genes.

    Each cell keeps its own non-zero genes that are in the vocabulary (no intersection
    with a reference gene list); genes sharing a vocabulary id are merged first
    (:func:`merge_duplicate_genes`). Values are binned with scGPT's algorithm
    (:func:`bin_values`). When a cell has more than ``max_len - 1`` such genes:

    - ``selection="sample"`` (published scGPT models) does what scGPT's ``embed_data``
      does: bin over all the cell's genes, then keep a random ``max_len - 1`` of them;
    - ``selection="top"`` (scagent's own encoders) keeps the ``max_len - 1`` most
      expressed genes (ties by column order) and bins over the kept genes.

    The random numbers (tie spreading, gene sampling) are derived from ``seed`` and each
    cell's own genes and values, so a cell gets the same tokens in any batch.

    Parameters
    ----------
    X
        (cells, genes) expression, sparse or dense, non-negative.
    gene_ids
        Vocabulary id of each column, -1 for genes outside the vocabulary.
    max_len
        Tokens per cell including ``<cls>``.
    n_bins
        Number of value bins (scGPT: 51).
    cls_id, pad_id, pad_value
        Special token ids and the value of non-gene positions (``<cls>`` and padding).
    selection
        ``"top"`` or ``"sample"``, see above.
    log1p
        Whether ``X`` is log1p-transformed (used only to merge duplicated genes).
    seed
        Seed of the per-cell random numbers.
    rng
        Draw the random numbers from this generator instead (``rng.random``): first the
        tie-spreading numbers, cell after cell and gene after gene in column order, as
        scGPT draws them from the global NumPy state (so a seeded ``RandomState``
        reproduces scGPT's bins), then the sampling keys. The tokens then depend on the
        batch.

    Returns
    -------
    The padded batch (padded to the longest cell) and the number of genes tokenised per
    cell.
    """
    if selection not in SELECTIONS:
        msg = f"selection must be one of {SELECTIONS}, got {selection!r}."
        raise ValueError(msg)
    if max_len < 2:
        msg = f"max_len must leave room for <cls> and a gene (>= 2), got {max_len}."
        raise ValueError(msg)
    X, ids_of_col = merge_duplicate_genes(X, gene_ids, log1p=log1p)
    if not X.has_sorted_indices:
        X = X.sorted_indices()
    n = X.shape[0]
    rows = np.repeat(np.arange(n), np.diff(X.indptr))
    cols, vals = X.indices.astype(np.int64), X.data.astype(np.float32, copy=False)
    keep = vals > 0
    if not keep.all():
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    limit = max_len - 1
    if selection == "top":
        descending = np.uint32(0xFFFF_FFFF) - vals.view(np.uint32)  # high values first
        keep = _keep_per_row(rows, descending, n, limit)
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    ids = ids_of_col[cols]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
    if rng is not None:
        uniforms = rng.random(len(vals))
    else:
        keys = _cell_keys(indptr, ids, vals, seed)
        uniforms = _uniform(_streams(keys, rows, ids, _SALT_TIES))
    bins = _bin_rows(vals, indptr, uniforms, n_bins)
    if selection == "sample":
        if rng is not None:
            draw = (rng.random(len(vals)) * 2.0**32).astype(np.uint32)
        else:
            draw = (_streams(keys, rows, ids, _SALT_SAMPLE) >> _U64(32)).astype(np.uint32)
        keep = _keep_per_row(rows, draw, n, limit)
        rows, ids, bins = rows[keep], ids[keep], bins[keep]
    lengths = np.bincount(rows, minlength=n).astype(np.int64)
    seq = int(lengths.max(initial=0)) + 1
    genes = np.full((n, seq), pad_id, dtype=np.int64)
    values = np.full((n, seq), pad_value, dtype=np.float32)
    genes[:, 0] = cls_id
    pos = np.arange(len(rows)) - np.concatenate([[0], np.cumsum(lengths)])[rows] + 1
    genes[rows, pos] = ids
    values[rows, pos] = bins
    padding = np.arange(seq)[None, :] > lengths[:, None]
    batch = TokenBatch(torch.from_numpy(genes), torch.from_numpy(values), torch.from_numpy(padding))
    return batch, lengths
