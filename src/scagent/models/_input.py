"""From an AnnData to what an encoder reads: the log1p(CP10k) matrix and vocabulary ids."""

from __future__ import annotations

import logging

import numpy as np
from anndata import AnnData

from .._constants import LAYER_LOG1P
from .._errors import InputDataError
from ..knowledge import gene_table
from ..pp import prepare
from ._encoder import Encoder
from ._tokenize import merge_duplicate_genes

__all__ = ["MIN_VOCAB_GENES", "canonical_matrix", "model_input"]

logger = logging.getLogger("scagent")

#: Fewest genes of the encoder's vocabulary a dataset must measure.
MIN_VOCAB_GENES = 50


def canonical_matrix(adata: AnnData):
    """log1p(CP10k) matrix and its gene names, preparing a copy when needed."""
    if LAYER_LOG1P in adata.layers:
        return adata.layers[LAYER_LOG1P], adata.var_names
    prepared = prepare(adata, copy=True)
    return prepared.layers[LAYER_LOG1P], prepared.var_names


def model_input(adata: AnnData, encoder: Encoder) -> tuple[object, np.ndarray, int]:
    """What the encoder reads: matrix, vocabulary id per column, genes found in the vocabulary.

    Mouse gene symbols are looked up through their human orthologues (Ensembl 105), so
    mouse data runs through the human encoder and plugins. Genes that end up with the same
    vocabulary id (several mouse genes with one human orthologue, duplicated symbols) are
    merged into one column, summing their linear values
    (:func:`~scagent.models.merge_duplicate_genes`), so no token appears twice in a cell;
    genes outside the vocabulary are dropped.

    Returns
    -------
    The CSR log1p(CP10k) matrix with one column per vocabulary id, those ids (distinct),
    and how many of ``adata``'s genes map to the vocabulary (before merging).

    Raises
    ------
    InputDataError
        When fewer than :data:`MIN_VOCAB_GENES` genes are in the encoder's vocabulary.
    """
    X, genes = canonical_matrix(adata)
    ids = encoder.gene_ids(genes)
    n_in = int((ids >= 0).sum())
    mouse = gene_table().mouse_to_human
    orth = encoder.gene_ids([mouse.get(str(g), "") for g in genes])
    n_orth = int((orth >= 0).sum())
    if n_orth > 2 * n_in:  # mouse genes: read them through their human orthologues
        logger.info("Mapped %d mouse genes to human orthologues in the vocabulary.", n_orth)
        ids, n_in = orth, n_orth
    if n_in < MIN_VOCAB_GENES:
        msg = (
            f"Only {n_in} of {len(genes)} genes are in the vocabulary of encoder "
            f"{encoder.name!r}; at least {MIN_VOCAB_GENES} are needed. Are var_names gene "
            "symbols (human)? sa.read recognises Ensembl ids and old symbols."
        )
        raise InputDataError(msg)
    X, ids = merge_duplicate_genes(X, ids, log1p=True)
    if len(ids) < n_in:
        logger.info("%d genes map to %d distinct vocabulary genes; merged.", n_in, len(ids))
    return X, ids, n_in
