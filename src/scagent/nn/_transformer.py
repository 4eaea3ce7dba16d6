"""scGPT's transformer encoder, tensor-only, with PyTorch scaled-dot-product attention.

Module and parameter names match scGPT's ``TransformerModel`` with its flash-attention
layout (``self_attn.Wqkv``), so published state dicts load unchanged; the PyTorch
``nn.MultiheadAttention`` layout (``self_attn.in_proj_weight``) is renamed on load by
:func:`~scagent.nn.remap_scgpt_state_dict`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._config import EncoderConfig

__all__ = ["SelfAttention", "TransformerModel"]


class GeneEncoder(nn.Module):
    """Gene-token embedding followed by layer norm."""

    def __init__(self, ntoken: int, d_model: int, padding_idx: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(ntoken, d_model, padding_idx=padding_idx)
        self.enc_norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.enc_norm(self.embedding(x))


class ContinuousValueEncoder(nn.Module):
    """Expression value (bin index) through Linear-ReLU-Linear-LayerNorm."""

    def __init__(self, d_model: int, dropout: float, max_value: float = 512) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear1 = nn.Linear(1, d_model)
        self.linear2 = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.max_value = max_value

    def forward(self, x: Tensor) -> Tensor:
        x = torch.clamp(x.unsqueeze(-1), max=self.max_value)
        return self.dropout(self.norm(self.linear2(F.relu(self.linear1(x)))))


class CategoryValueEncoder(nn.Module):
    """Expression bin through an embedding table."""

    def __init__(self, n_bins: int, d_model: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_bins + 3, d_model)
        self.enc_norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        # pad (-2) and mask (-1) values get their own rows after the bins
        idx = torch.where(x < 0, self.embedding.num_embeddings + x.long(), x.long())
        return self.enc_norm(self.embedding(idx))


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused ``Wqkv`` projection and SDPA.

    ``Wqkv`` stacks the query, key and value projections (in that order), as scGPT's
    flash-attention layer and PyTorch's ``in_proj_weight`` both do. Adapters (LoRA) wrap
    ``Wqkv`` and ``out_proj``.
    """

    def __init__(self, d_model: int, nhead: int, dropout: float) -> None:
        super().__init__()
        self.nhead = nhead
        self.dropout = dropout
        self.Wqkv = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        """``keep``: (batch, 1, 1, seq) boolean, True where a key may be attended."""
        b, s, d = x.shape
        qkv = self.Wqkv(x).view(b, s, 3, self.nhead, d // self.nhead).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(
            qkv[0],
            qkv[1],
            qkv[2],
            attn_mask=keep,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out_proj(out.transpose(1, 2).reshape(b, s, d))


class EncoderLayer(nn.Module):
    """A post-norm (or pre-norm) transformer encoder layer, scGPT's names."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.self_attn = SelfAttention(cfg.d_model, cfg.nhead, cfg.dropout)
        self.linear1 = nn.Linear(cfg.d_model, cfg.d_hid)
        self.dropout = nn.Dropout(cfg.dropout)
        self.linear2 = nn.Linear(cfg.d_hid, cfg.d_model)
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.dropout)
        self.pre_norm = cfg.norm_scheme == "pre"

    def _ff(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        if self.pre_norm:
            x = self.norm1(x)
            x = x + self.dropout1(self.self_attn(x, keep))
            x = self.norm2(x)
            return x + self.dropout2(self._ff(x))
        x = self.norm1(x + self.dropout1(self.self_attn(x, keep)))
        return self.norm2(x + self.dropout2(self._ff(x)))


class TransformerStack(nn.Module):
    """The ``transformer_encoder`` of scGPT: a list of ``layers``."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.nlayers))

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        for layer in self.layers:
            x = layer(x, keep)
        return x


class ExprDecoder(nn.Module):
    """Predicts each token's expression value from its output (masked-expression loss)."""

    def __init__(self, d_model: int, explicit_zero_prob: bool) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(d_model, d_model),
            nn.LeakyReLU(),
            nn.Linear(d_model, d_model),
            nn.LeakyReLU(),
            nn.Linear(d_model, 1),
        )
        if explicit_zero_prob:
            self.zero_logit = nn.Sequential(
                nn.Linear(d_model, d_model),
                nn.LeakyReLU(),
                nn.Linear(d_model, d_model),
                nn.LeakyReLU(),
                nn.Linear(d_model, 1),
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x).squeeze(-1)


class ClsDecoder(nn.Module):
    """scGPT's classification decoder (kept so that published checkpoints load whole)."""

    def __init__(self, d_model: int, n_cls: int, nlayers: int) -> None:
        super().__init__()
        self._decoder = nn.ModuleList()
        for _ in range(nlayers - 1):
            self._decoder.extend([nn.Linear(d_model, d_model), nn.ReLU(), nn.LayerNorm(d_model)])
        self.out_layer = nn.Linear(d_model, n_cls)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self._decoder:
            x = layer(x)
        return self.out_layer(x)


class MVCDecoder(nn.Module):
    """scGPT's 'inner product' masked-value decoder from the cell embedding."""

    def __init__(self, d_model: int, explicit_zero_prob: bool) -> None:
        super().__init__()
        self.gene2query = nn.Linear(d_model, d_model)
        self.W = nn.Linear(d_model, d_model, bias=False)
        if explicit_zero_prob:
            self.W_zero_logit = nn.Linear(d_model, d_model)

    def forward(self, cell_emb: Tensor, gene_embs: Tensor) -> Tensor:
        query = torch.sigmoid(self.gene2query(gene_embs))
        return torch.bmm(self.W(query), cell_emb.unsqueeze(2)).squeeze(2)


class TransformerModel(nn.Module):
    """scGPT's encoder: gene tokens + binned values -> per-token states and a ``<cls>`` embedding.

    Parameters
    ----------
    cfg
        Model sizes and options.
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = GeneEncoder(cfg.ntoken, cfg.d_model, cfg.pad_token_id)
        if cfg.input_emb_style == "continuous":
            self.value_encoder = ContinuousValueEncoder(cfg.d_model, cfg.dropout)
        else:
            self.value_encoder = CategoryValueEncoder(cfg.n_bins, cfg.d_model)
        self.transformer_encoder = TransformerStack(cfg)
        self.decoder = ExprDecoder(cfg.d_model, cfg.explicit_zero_prob)
        self.cls_decoder = ClsDecoder(cfg.d_model, cfg.n_cls, cfg.nlayers_cls)
        if cfg.do_mvc:
            self.mvc_decoder = MVCDecoder(cfg.d_model, cfg.explicit_zero_prob)
        nn.init.uniform_(self.encoder.embedding.weight, -0.1, 0.1)  # as scGPT

    def encode(self, genes: Tensor, values: Tensor, padding: Tensor) -> Tensor:
        """Per-token output states.

        Parameters
        ----------
        genes
            (batch, seq) vocabulary ids; position 0 holds ``<cls>``.
        values
            (batch, seq) binned expression (``pad_value`` at padding and ``<cls>``).
        padding
            (batch, seq) boolean, True at padding positions.

        Returns
        -------
        (batch, seq, d_model) states.
        """
        x = self.encoder(genes) + self.value_encoder(values)
        keep = None if not bool(padding.any()) else (~padding)[:, None, None, :]
        return self.transformer_encoder(x, keep)

    def cell_embedding(self, genes: Tensor, values: Tensor, padding: Tensor) -> Tensor:
        """(batch, d_model) ``<cls>`` embeddings."""
        return self.encode(genes, values, padding)[:, 0, :]

    def forward(self, genes: Tensor, values: Tensor, padding: Tensor) -> dict[str, Tensor]:
        """States, ``<cls>`` embedding and the expression prediction of every token.

        With ``do_mvc``, also ``mvc_pred``: every token's value predicted from the cell
        embedding and the gene's own embedding alone (scGPT's GEPC objective), which is what
        trains the ``<cls>`` embedding to summarise the cell.
        """
        states = self.encode(genes, values, padding)
        out = {"states": states, "cell_emb": states[:, 0, :], "pred": self.decoder(states)}
        if self.cfg.do_mvc:
            out["mvc_pred"] = self.mvc_decoder(out["cell_emb"], self.encoder(genes))
        return out
