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
    """The matrix, the vocabulary id of each gene (-1: unknown) and the number known.

    Mouse gene symbols are looked up through their human orthologues (Ensembl 105), so
    mouse data runs through the human encoder and plugins.

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
    return X, ids, n_in
