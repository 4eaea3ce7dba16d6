"""An encoder ready to embed cells: model, vocabulary and tokeniser settings together."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .._settings import settings
from ..nn import TransformerModel
from ._checkpoint import CheckpointError, load_checkpoint, load_scgpt_checkpoint, weights_hash
from ._tokenize import tokenize
from ._vocab import GeneVocab

__all__ = ["Encoder", "default_model_path", "load_encoder"]

logger = logging.getLogger("scagent")

DEFAULT_MAX_LEN_SCGPT = 1200


def default_model_path() -> Path:
    """Folder of the encoder shipped with the package."""
    with resources.as_file(resources.files("scagent.models") / "data" / "default") as p:
        return Path(p)


@dataclass
class Encoder:
    """A loaded encoder.

    Attributes
    ----------
    model
        The tensor-only transformer (eval mode).
    vocab
        Its gene vocabulary.
    max_len
        Tokens per cell, ``<cls>`` included.
    n_bins
        Expression bins.
    name
        ``"default"`` or the folder it was loaded from.
    sha256
        Hash of the weight file.
    kind
        ``"scagent"`` or ``"scgpt"``.
    """

    model: TransformerModel
    vocab: GeneVocab
    max_len: int
    n_bins: int
    name: str
    sha256: str
    kind: str

    @property
    def dim(self) -> int:
        """Embedding width."""
        return self.model.cfg.d_model

    def gene_ids(self, genes) -> np.ndarray:
        """Vocabulary id per gene (-1 if absent)."""
        return self.vocab.ids([str(g) for g in genes])

    @torch.inference_mode()
    def embed(
        self,
        X,
        gene_ids: np.ndarray,
        *,
        batch_size: int | None = None,
        device: str | None = None,
        progress: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """L2-normalised ``<cls>`` embeddings of the rows of ``X`` (log1p CP10k or counts).

        Returns the (cells, dim) float32 embeddings and the tokens used per cell.
        """
        device = device or settings.resolved_device()
        batch_size = batch_size or settings.batch_size
        progress = settings.progress if progress is None else progress
        model = self.model.to(device).eval()
        cfg = model.cfg
        out = np.empty((X.shape[0], cfg.d_model), dtype=np.float32)
        lengths = np.empty(X.shape[0], dtype=np.int64)
        use_bf16 = device.startswith("cuda")
        starts = range(0, X.shape[0], batch_size)
        for start in tqdm(starts, disable=not progress, desc="embedding", unit="batch"):
            stop = min(start + batch_size, X.shape[0])
            batch, n_tok = tokenize(
                X[start:stop],
                gene_ids,
                max_len=self.max_len,
                n_bins=self.n_bins,
                cls_id=self.vocab.cls_id,
                pad_id=self.vocab.pad_id,
                pad_value=cfg.pad_value,
            )
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
                emb = model.cell_embedding(
                    batch.genes.to(device), batch.values.to(device), batch.padding.to(device)
                )
            out[start:stop] = emb.float().cpu().numpy()
            lengths[start:stop] = n_tok
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out, lengths


@cache
def _load_cached(path: str, name: str) -> Encoder:
    folder = Path(path)
    if (folder / "args.json").exists():
        model, vocab, args = load_scgpt_checkpoint(folder)
        max_len = int(args.get("max_seq_len", DEFAULT_MAX_LEN_SCGPT))
        n_bins = int(args.get("n_bins", 51))
        kind = "scgpt"
    else:
        model, vocab, config = load_checkpoint(folder)
        max_len, n_bins, kind = int(config["max_len"]), int(config["n_bins"]), "scagent"
    return Encoder(model, vocab, max_len, n_bins, name, weights_hash(folder), kind)


def load_encoder(model: str | os.PathLike = "default") -> Encoder:
    """Load an encoder by name or folder.

    Parameters
    ----------
    model
        ``"default"`` (the encoder shipped with scagent), a folder written by
        ``scagent pretrain``, or a published scGPT folder (``args.json``, ``vocab.json``,
        ``best_model.pt``).

    Returns
    -------
    The encoder; loaded once per process and folder.
    """
    if str(model) == "default":
        path = default_model_path()
        if not (path / "model.safetensors").exists():
            msg = (
                f"The default encoder weights are missing from {path}; reinstall scagent or "
                "build them with the command in docs/model_card.md."
            )
            raise CheckpointError(msg)
        return _load_cached(str(path), "default")
    path = Path(model).expanduser().resolve()
    return _load_cached(str(path), str(path))
