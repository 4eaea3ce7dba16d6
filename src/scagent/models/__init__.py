"""AnnData-aware model code: vocabularies, tokenisation, checkpoints, pretraining."""

from __future__ import annotations

from ._checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_scgpt_checkpoint,
    save_checkpoint,
    scgpt_encoder_config,
    weights_hash,
)
from ._encoder import Encoder, default_model_path, load_encoder
from ._input import MIN_VOCAB_GENES, canonical_matrix, model_input
from ._tokenize import SELECTIONS, TokenBatch, bin_values, merge_duplicate_genes, tokenize
from ._vocab import GeneVocab

__all__ = [
    "MIN_VOCAB_GENES",
    "SELECTIONS",
    "CheckpointError",
    "Encoder",
    "GeneVocab",
    "TokenBatch",
    "bin_values",
    "canonical_matrix",
    "default_model_path",
    "load_checkpoint",
    "load_encoder",
    "load_scgpt_checkpoint",
    "merge_duplicate_genes",
    "model_input",
    "save_checkpoint",
    "scgpt_encoder_config",
    "tokenize",
    "weights_hash",
]
