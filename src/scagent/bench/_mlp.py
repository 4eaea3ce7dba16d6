"""The paper's MLP baseline: two hidden layers on log1p(CP10k) of all genes."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

__all__ = ["MLPClassifier"]


class _Net(nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: tuple[int, int], dropout: float) -> None:
        super().__init__()
        # first layer stored genes x hidden so that embedding_bag reads it without a copy
        self.first_weight = nn.Parameter(torch.empty(n_in, hidden[0]))
        self.first_bias = nn.Parameter(torch.zeros(hidden[0]))
        nn.init.kaiming_uniform_(self.first_weight.T, a=5**0.5)  # as nn.Linear
        self.rest = nn.Sequential(
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden[0], hidden[1]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden[1], n_out),
        )

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        # x @ W.T + b for sparse x: a weighted sum of the weight columns of expressed genes
        indices, offsets, values = batch
        h = nn.functional.embedding_bag(
            indices, self.first_weight, offsets, mode="sum", per_sample_weights=values
        )
        return self.rest(h + self.first_bias)


def _batch(X, rows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of X as (column indices, row offsets, values): the CSR parts, for embedding_bag."""
    sub = sp.csr_matrix(X[rows], dtype=np.float32)
    return (
        torch.from_numpy(sub.indices.astype(np.int64)),
        torch.from_numpy(sub.indptr[:-1].astype(np.int64)),
        torch.from_numpy(sub.data),
    )


class MLPClassifier:
    """A 2-hidden-layer perceptron trained with Adam and cross-entropy."""

    def __init__(
        self,
        *,
        hidden: tuple[int, int] = (256, 128),
        dropout: float = 0.2,
        epochs: int = 20,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        seed: int = 0,
    ) -> None:
        self.hidden, self.dropout, self.epochs = hidden, dropout, epochs
        self.batch_size, self.lr, self.weight_decay, self.seed = batch_size, lr, weight_decay, seed

    def fit(self, X, y) -> MLPClassifier:
        """Train on a cells x genes matrix and string labels."""
        self.classes_, codes = np.unique(np.asarray(y, dtype=str), return_inverse=True)
        gen = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.net_ = _Net(X.shape[1], len(self.classes_), self.hidden, self.dropout)
        opt = torch.optim.Adam(
            self.net_.parameters(),
            lr=self.lr,
            weight_decay=self.weight_decay,
            fused=True,  # one kernel for 11 M parameters: several times faster on CPU
        )
        target = torch.from_numpy(codes).long()
        self.net_.train()
        for _ in range(self.epochs):
            order = torch.randperm(X.shape[0], generator=gen).numpy()
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                loss = nn.functional.cross_entropy(self.net_(_batch(X, rows)), target[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return self

    @torch.no_grad()
    def predict(self, X) -> np.ndarray:
        """Most probable class per cell."""
        self.net_.eval()
        out = []
        for start in range(0, X.shape[0], 1024):
            rows = np.arange(start, min(start + 1024, X.shape[0]))
            out.append(self.net_(_batch(X, rows)).argmax(1).numpy())
        return self.classes_[np.concatenate(out)]
