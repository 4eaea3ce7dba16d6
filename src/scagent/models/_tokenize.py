"""Turn expression rows into scGPT token sequences: gene ids and binned values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["TokenBatch", "bin_values", "tokenize"]


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


def bin_values(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Per-cell quantile bins of non-zero values, as scGPT does.

    The cell's non-zero values are cut at ``n_bins - 1`` quantiles (from 0 to 1) and each
    value gets the index of its bin, 1..``n_bins - 1``; equal values get equal bins.
    Quantile bins are unchanged by any monotone transform, so counts and log1p(CP10k)
    give the same bins.
    """
    if values.size == 0:
        return values.astype(np.float32)
    edges = np.quantile(values, np.linspace(0, 1, n_bins - 1))
    return np.clip(np.digitize(values, edges, right=True), 1, n_bins - 1).astype(np.float32)


def tokenize(
    X,
    gene_ids: np.ndarray,
    *,
    max_len: int,
    n_bins: int,
    cls_id: int,
    pad_id: int,
    pad_value: float,
) -> tuple[TokenBatch, np.ndarray]:
    """Tokenise cells.

    Each cell keeps its own expressed genes that are in the vocabulary (no intersection
    with a reference gene list). If there are more than ``max_len - 1``, the most highly
    expressed are kept (ties broken by gene order), so a cell always gets the same
    tokens. The kept values are then binned per cell (:func:`bin_values`), so the bins
    spread over the genes the model sees; with ``max_len`` above the cell's gene count
    (published scGPT models use 1,200) this is exactly scGPT's per-cell binning.

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
        Special token ids and the value of non-gene positions.

    Returns
    -------
    The padded batch (padded to the longest cell) and the number of genes tokenised per
    cell.
    """
    X = sp.csr_matrix(X)
    n = X.shape[0]
    known = gene_ids >= 0
    rows_genes, rows_values = [], []
    for i in range(n):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        cols, vals = X.indices[lo:hi], X.data[lo:hi]
        keep = known[cols] & (vals > 0)
        cols, vals = cols[keep], vals[keep]
        if len(cols) > max_len - 1:
            top = np.lexsort((cols, -vals))[: max_len - 1]
            cols, vals = cols[top], vals[top]
        rows_genes.append(gene_ids[cols])
        rows_values.append(bin_values(vals, n_bins))
    lengths = np.array([len(g) for g in rows_genes], dtype=np.int64)
    seq = int(lengths.max(initial=0)) + 1
    genes = np.full((n, seq), pad_id, dtype=np.int64)
    values = np.full((n, seq), pad_value, dtype=np.float32)
    genes[:, 0] = cls_id
    for i, (g, v) in enumerate(zip(rows_genes, rows_values)):
        genes[i, 1 : 1 + len(g)] = g
        values[i, 1 : 1 + len(v)] = v
    padding = np.arange(seq)[None, :] > lengths[:, None]
    batch = TokenBatch(torch.from_numpy(genes), torch.from_numpy(values), torch.from_numpy(padding))
    return batch, lengths
