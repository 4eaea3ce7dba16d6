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
from ._tokenize import TokenBatch, bin_values, tokenize
from ._vocab import GeneVocab

__all__ = [
    "CheckpointError",
    "Encoder",
    "GeneVocab",
    "TokenBatch",
    "bin_values",
    "default_model_path",
    "load_checkpoint",
    "load_encoder",
    "load_scgpt_checkpoint",
    "save_checkpoint",
    "tokenize",
    "weights_hash",
]
