"""An encoder ready to embed cells: model, vocabulary and tokeniser settings together."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .._settings import settings
from ..nn import TransformerModel, adapter_active
from ._checkpoint import CheckpointError, load_checkpoint, load_scgpt_checkpoint, weights_hash
from ._tokenize import merge_duplicate_genes, tokenize
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

    Notes
    -----
    Published scGPT models (``kind="scgpt"``) read cells as scGPT's ``embed_data`` does:
    expression bins over all the cell's non-zero vocabulary genes, then, in cells with
    more genes than tokens, a random subset (drawn per cell from its own content, so a
    cell always gets the same tokens). scagent's own encoders keep each cell's most
    expressed genes instead and bin over those; see :func:`~scagent.models.tokenize`.
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

    @property
    def selection(self) -> str:
        """How cells with more genes than tokens are cut (see :func:`tokenize`)."""
        return "sample" if self.kind == "scgpt" else "top"

    @property
    def n_parameters(self) -> int:
        """Parameters of the base model (plugin adapters attached to it not counted)."""
        return sum(p.numel() for n, p in self.model.named_parameters() if ".adapters." not in n)

    def tokenize(self, X, gene_ids: np.ndarray, *, max_len: int | None = None, log1p: bool = True):
        """Tokenise rows of ``X`` for this encoder (:func:`~scagent.models.tokenize`).

        ``max_len`` defaults to the encoder's; returns the batch and the genes per cell.
        """
        return tokenize(
            X,
            gene_ids,
            max_len=max_len or self.max_len,
            n_bins=self.n_bins,
            cls_id=self.vocab.cls_id,
            pad_id=self.vocab.pad_id,
            pad_value=self.model.cfg.pad_value,
            selection=self.selection,
            log1p=log1p,
        )

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
        log1p: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """L2-normalised ``<cls>`` embeddings of the rows of ``X`` by the bare base model.

        Plugin adapters attached to the model are switched off for the call (and the
        previously active one restored afterwards), so the result never depends on what
        ran before.

        Parameters
        ----------
        X
            (cells, genes) log1p(CP10k) (``log1p=True``) or counts.
        gene_ids
            Vocabulary id of each column (-1: unknown); genes sharing an id are merged.
        batch_size, device, progress
            Default to ``sa.settings``.
        log1p
            Whether ``X`` is log1p-transformed (how duplicated genes are summed).

        Returns
        -------
        The (cells, dim) float32 embeddings and the tokens used per cell.
        """
        device = device or settings.resolved_device()
        batch_size = batch_size or settings.batch_size
        progress = settings.progress if progress is None else progress
        X, gene_ids = merge_duplicate_genes(X, gene_ids, log1p=log1p)
        model = self.model.to(device).eval()
        cfg = model.cfg
        out = np.empty((X.shape[0], cfg.d_model), dtype=np.float32)
        lengths = np.empty(X.shape[0], dtype=np.int64)
        use_bf16 = device.startswith("cuda")
        starts = range(0, X.shape[0], batch_size)
        with adapter_active(model, None):
            for start in tqdm(starts, disable=not progress, desc="embedding", unit="batch"):
                stop = min(start + batch_size, X.shape[0])
                batch, n_tok = self.tokenize(X[start:stop], gene_ids)
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
                    emb = model.cell_embedding(
                        batch.genes.to(device), batch.values.to(device), batch.padding.to(device)
                    )
                out[start:stop] = emb.float().cpu().numpy()
                lengths[start:stop] = n_tok
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out, lengths


_WEIGHT_FILES = ("config.json", "args.json", "vocab.json", "model.safetensors", "best_model.pt")
_CACHE: dict[tuple[str, str], tuple[tuple, Encoder]] = {}
_CACHE_LOCK = threading.Lock()


def _stamp(folder: Path) -> tuple:
    """What identifies a folder's content cheaply: size, mtime and inode of its files."""
    out = []
    for name in _WEIGHT_FILES:
        try:
            st = (folder / name).stat()
        except OSError:  # absent (or the folder is not one): the loader says what is wrong
            continue
        out.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def _load(folder: Path, name: str) -> Encoder:
    if (folder / "args.json").exists():
        model, vocab, args = load_scgpt_checkpoint(folder)
        max_len = int(args.get("max_seq_len", DEFAULT_MAX_LEN_SCGPT))
        n_bins = int(args.get("n_bins", 51))
        kind = "scgpt"
    else:
        model, vocab, config = load_checkpoint(folder)
        max_len, n_bins, kind = int(config["max_len"]), int(config["n_bins"]), "scagent"
    return Encoder(model, vocab, max_len, n_bins, name, weights_hash(folder), kind)


def _load_cached(folder: Path, name: str) -> Encoder:
    """One encoder per folder and process, reloaded when the folder's files change."""
    key = (str(folder), name)
    stamp = _stamp(folder)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        encoder = _load(folder, name)
        if hit is not None:
            logger.info("Model folder %s changed on disk; reloaded it.", folder)
        _CACHE[key] = (stamp, encoder)
        return encoder


def load_encoder(model: str | os.PathLike | Encoder = "default") -> Encoder:
    """Load an encoder by name or folder.

    Parameters
    ----------
    model
        ``"default"`` (the encoder shipped with scagent), a folder written by
        ``scagent pretrain``, a published scGPT folder (``args.json``, ``vocab.json``,
        ``best_model.pt``), or an encoder already loaded (returned as it is).

    Returns
    -------
    The encoder. It is loaded once per process and folder and shared by every caller; a
    folder whose files were rewritten since (other size, modification time or inode) is
    loaded again.
    """
    if isinstance(model, Encoder):
        return model
    if str(model) == "default":
        path = default_model_path()
        if not (path / "model.safetensors").exists():
            msg = (
                f"The default encoder weights are missing from {path}; reinstall scagent or "
                "build them with the command in docs/model_card.md."
            )
            raise CheckpointError(msg)
        return _load_cached(path, "default")
    path = Path(model).expanduser().resolve()
    return _load_cached(path, str(path))
