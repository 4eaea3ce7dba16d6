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
        self.layers = nn.Sequential(
            nn.Linear(n_in, hidden[0]), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden[0], hidden[1]), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden[1], n_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _dense(X, rows) -> torch.Tensor:
    sub = X[rows]
    return torch.from_numpy(sub.toarray() if sp.issparse(sub) else np.asarray(sub)).float()


class MLPClassifier:
    """A 2-hidden-layer perceptron trained with Adam and cross-entropy."""

    def __init__(
        self, *, hidden: tuple[int, int] = (256, 128), dropout: float = 0.2, epochs: int = 30,
        batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 1e-5, seed: int = 0,
    ) -> None:
        self.hidden, self.dropout, self.epochs = hidden, dropout, epochs
        self.batch_size, self.lr, self.weight_decay, self.seed = batch_size, lr, weight_decay, seed

    def fit(self, X, y) -> MLPClassifier:
        """Train on a cells x genes matrix and string labels."""
        self.classes_, codes = np.unique(np.asarray(y, dtype=str), return_inverse=True)
        gen = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.net_ = _Net(X.shape[1], len(self.classes_), self.hidden, self.dropout)
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        target = torch.from_numpy(codes).long()
        self.net_.train()
        for _ in range(self.epochs):
            order = torch.randperm(X.shape[0], generator=gen).numpy()
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                loss = nn.functional.cross_entropy(self.net_(_dense(X, rows)), target[rows])
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
            out.append(self.net_(_dense(X, rows)).argmax(1).numpy())
        return self.classes_[np.concatenate(out)]
