"""AnnData-aware model code: vocabularies, tokenisation, checkpoints, pretraining."""

from __future__ import annotations

from ._checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_scgpt_checkpoint,
    save_checkpoint,
    weights_hash,
)
from ._encoder import Encoder, default_model_path, load_encoder
from ._input import MIN_VOCAB_GENES, canonical_matrix, model_input
from ._tokenize import TokenBatch, bin_values, tokenize
from ._vocab import GeneVocab

__all__ = [
    "MIN_VOCAB_GENES",
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
    "model_input",
    "save_checkpoint",
    "tokenize",
    "weights_hash",
]
