"""Peer annotation methods run against scagent in the benchmark.

Every peer sees the same log1p(CP10k) matrix (``adata.X``) and gene names.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import numpy as np
from anndata import AnnData
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from ._mlp import MLPClassifier

__all__ = ["PEERS", "CellTypistPeer", "KNNPCAPeer", "LogRegPeer", "MLPPeer", "Peer"]


class Peer:
    """A method with ``fit(adata, labels)`` and ``predict(adata, variant)``."""

    name = "peer"
    variants: tuple[str, ...] = ("",)
    #: Heavy peers run on the first protocol (80/20, union of genes) only.
    heavy = False

    def __init__(self, seed: int = 0, quick: bool = False) -> None:
        self.seed = seed
        self.quick = quick

    def row_name(self, variant: str) -> str:
        """Name of one result row."""
        return f"{self.name} {variant}".strip()

    def fit(self, adata: AnnData, labels: np.ndarray) -> None:
        raise NotImplementedError

    def predict(self, adata: AnnData, variant: str = "") -> np.ndarray:
        raise NotImplementedError

    def predict_scored(self, adata: AnnData, variant: str = "") -> tuple[np.ndarray, np.ndarray]:
        """Labels and the method's own confidence in them (NaN when it has none)."""
        labels = self.predict(adata, variant)
        return labels, np.full(len(labels), np.nan)


class LogRegPeer(Peer):
    """Multinomial logistic regression on all genes."""

    name = "logistic regression"

    def fit(self, adata, labels):
        self.model = LogisticRegression(max_iter=1000, C=1.0, random_state=self.seed)
        self.model.fit(adata.X, labels)

    def predict(self, adata, variant=""):
        return self.model.predict(adata.X)

    def predict_scored(self, adata, variant=""):
        p = self.model.predict_proba(adata.X)
        return self.model.classes_[p.argmax(1)], p.max(1)


class KNNPCAPeer(Peer):
    """k nearest neighbours (k=15) on 50 principal components of 2,000 variable genes."""

    name = "kNN on PCA"

    def fit(self, adata, labels):
        X = adata.X
        mean = np.asarray(X.mean(axis=0)).ravel()
        var = np.asarray(X.multiply(X).mean(axis=0)).ravel() - mean**2
        self.genes = np.sort(np.argsort(-var)[:2000])
        self.pca = PCA(n_components=50, random_state=self.seed)
        Z = self.pca.fit_transform(X[:, self.genes].toarray())
        self.knn = KNeighborsClassifier(n_neighbors=15).fit(Z, labels)

    def predict(self, adata, variant=""):
        return self.knn.predict(self.pca.transform(adata.X[:, self.genes].toarray()))

    def predict_scored(self, adata, variant=""):
        p = self.knn.predict_proba(self.pca.transform(adata.X[:, self.genes].toarray()))
        return self.knn.classes_[p.argmax(1)], p.max(1)


class MLPPeer(Peer):
    """The paper's MLP baseline: two hidden layers (256, 128), all genes."""

    name = "MLP (2 hidden layers)"

    def fit(self, adata, labels):
        self.model = MLPClassifier(seed=self.seed).fit(adata.X, labels)

    def predict(self, adata, variant=""):
        return self.model.predict(adata.X)


class CellTypistPeer(Peer):
    """CellTypist 1.7: a custom model trained on the reference, with and without majority voting."""

    name = "CellTypist"
    variants = ("", "+ majority voting")

    def fit(self, adata, labels):
        import celltypist

        train = AnnData(X=adata.X, obs={"label": np.asarray(labels)}, var=adata.var[[]])
        train.obs_names = adata.obs_names
        with _quiet():
            self.model = celltypist.train(
                train, labels="label", n_jobs=2, check_expression=False, max_iter=1000
            )

    def predict(self, adata, variant=""):
        return self.predict_scored(adata, variant)[0]

    def predict_scored(self, adata, variant=""):
        import celltypist

        query = AnnData(X=adata.X.copy(), var=adata.var[[]])
        query.obs_names = adata.obs_names
        mv = variant == "+ majority voting"
        with _quiet():
            result = celltypist.annotate(query, model=self.model, majority_voting=mv)
        labels = result.predicted_labels
        # CellTypist skips majority voting for 50 cells or fewer and keeps per-cell labels
        col = "majority_voting" if mv and "majority_voting" in labels else "predicted_labels"
        pred = labels[col].astype(str).to_numpy()
        prob = result.probability_matrix
        conf = prob.to_numpy()[np.arange(len(pred)), prob.columns.get_indexer(pred)]
        return pred, conf


@contextlib.contextmanager
def _quiet():
    """Silence CellTypist's and scanpy's chatter and warnings."""
    logger = logging.getLogger("celltypist")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


PEERS: tuple[type[Peer], ...] = (CellTypistPeer, LogRegPeer, KNNPCAPeer, MLPPeer)
