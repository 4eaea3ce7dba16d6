"""``sa.tl.embed``: the pretrained-space cell embedding (the paper's F_g)."""

from __future__ import annotations

import logging
import os

from anndata import AnnData

from .._constants import OBSM_EMBED, UNS_KEY
from ..models import load_encoder, model_input

__all__ = ["embed"]

logger = logging.getLogger("scagent")


def embed(
    adata: AnnData,
    *,
    model: str | os.PathLike = "default",
    key_added: str = OBSM_EMBED,
    batch_size: int | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Embed cells with the scRNA foundation encoder.

    Each cell is tokenised from its own expressed genes that the encoder's vocabulary
    knows (genes sharing a vocabulary id merged), with scGPT's per-cell expression bins;
    its ``<cls>`` output, L2-normalised, is the embedding. Cells with more genes than the
    model's token limit keep their most expressed genes (scagent's encoders) or, for
    published scGPT models, a random subset drawn per cell as scGPT does (the same cell
    always gets the same subset). The bare base encoder runs, whatever plugins were
    used before in the process.

    Parameters
    ----------
    adata
        Cells x genes. Uses ``layers['scagent_log1p_cp10k']`` when present, otherwise
        :func:`scagent.pp.prepare` runs on a copy (``adata`` is not changed).
    model
        ``"default"`` (shipped with scagent), a folder from ``scagent pretrain`` or a
        published scGPT folder.
    key_added
        ``.obsm`` key to write.
    batch_size
        Cells per forward pass (default ``sa.settings.batch_size``).
    copy
        Return a copy with the results instead of writing into ``adata``.

    Returns
    -------
    ``None``, or the copy when ``copy=True``. Sets

    ``adata.obsm['X_scagent' | key_added]``
        (cells, d_model) L2-normalised embeddings.
    ``adata.uns['scagent']['embed']``
        ``model``, ``model_sha256``, ``kind``, ``key_added``, ``n_genes_in_vocab`` (genes
        of ``adata`` found in the vocabulary), ``n_genes_unmapped``,
        ``n_distinct_vocab_genes`` (after merging genes that share a vocabulary id),
        ``mean_tokens_per_cell``, ``n_cells_without_tokens``, ``max_len``.
    """
    target = adata.copy() if copy else adata
    encoder = load_encoder(model)
    X, ids, n_in = model_input(target, encoder)
    emb, lengths = encoder.embed(X, ids, batch_size=batch_size)
    n_empty = int((lengths == 0).sum())
    if n_empty:
        logger.warning(
            "%d cells express no vocabulary gene; their embedding is the <cls> prior.", n_empty
        )
    target.obsm[key_added] = emb
    target.uns.setdefault(UNS_KEY, {})["embed"] = {
        "model": encoder.name,
        "model_sha256": encoder.sha256,
        "kind": encoder.kind,
        "key_added": key_added,
        "n_genes_in_vocab": n_in,
        "n_genes_unmapped": int(target.n_vars - n_in),
        "n_distinct_vocab_genes": len(ids),
        "mean_tokens_per_cell": float(lengths.mean()),
        "n_cells_without_tokens": n_empty,
        "max_len": encoder.max_len,
    }
    logger.info("Embedded %d cells (%d genes in vocabulary).", target.n_obs, n_in)
    return target if copy else None
