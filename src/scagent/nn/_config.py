"""Configuration of the scGPT-architecture encoder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

__all__ = ["EncoderConfig"]

_STYLES = ("continuous", "category")
_NORMS = ("post", "pre")


@dataclass
class EncoderConfig:
    """Sizes and options of :class:`~scagent.nn.TransformerModel`.

    The names follow scGPT's ``TransformerModel``; :meth:`from_scgpt_args` reads a
    published ``args.json``.

    Parameters
    ----------
    ntoken
        Vocabulary size (genes plus special tokens).
    d_model
        Width of token embeddings and of the transformer.
    nhead
        Attention heads.
    d_hid
        Width of each layer's feed-forward block.
    nlayers
        Transformer encoder layers.
    dropout
        Dropout rate in training.
    pad_token_id
        Vocabulary id of ``<pad>``.
    pad_value
        Value given to padding (and to the ``<cls>`` token) positions.
    mask_value
        Value given to masked positions in masked-expression pretraining.
    n_bins
        Expression bins (scGPT: 51, i.e. zero plus 50 quantile bins).
    input_emb_style
        ``"continuous"`` (bin index through a small MLP, as the published whole-human
        model) or ``"category"`` (an embedding per bin).
    norm_scheme
        ``"post"`` (scGPT's default) or ``"pre"`` layer norm.
    nlayers_cls
        Layers of the (unused here) ``cls_decoder`` of published checkpoints.
    n_cls
        Outputs of that ``cls_decoder``.
    do_mvc
        Build scGPT's masked-value-prediction-from-cell-embedding decoder.
    explicit_zero_prob
        Build the zero-probability branch of the expression decoder.
    """

    ntoken: int
    d_model: int = 128
    nhead: int = 4
    d_hid: int = 256
    nlayers: int = 4
    dropout: float = 0.1
    pad_token_id: int = 0
    pad_value: float = -2.0
    mask_value: float = -1.0
    n_bins: int = 51
    input_emb_style: str = "continuous"
    norm_scheme: str = "post"
    nlayers_cls: int = 3
    n_cls: int = 1
    do_mvc: bool = False
    explicit_zero_prob: bool = False

    def __post_init__(self) -> None:
        if self.input_emb_style not in _STYLES:
            msg = f"input_emb_style must be one of {_STYLES}, got {self.input_emb_style!r}."
            raise ValueError(msg)
        if self.norm_scheme not in _NORMS:
            msg = f"norm_scheme must be one of {_NORMS}, got {self.norm_scheme!r}."
            raise ValueError(msg)
        if self.d_model % self.nhead:
            msg = f"d_model ({self.d_model}) must be divisible by nhead ({self.nhead})."
            raise ValueError(msg)
        for name in ("ntoken", "d_model", "nhead", "d_hid", "nlayers", "n_bins"):
            if getattr(self, name) < 1:
                msg = f"{name} must be positive, got {getattr(self, name)}."
                raise ValueError(msg)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EncoderConfig:
        """Build from :meth:`to_dict` output, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_scgpt_args(cls, args: dict, *, ntoken: int, pad_token_id: int) -> EncoderConfig:
        """Translate a published scGPT ``args.json``."""
        try:
            return cls(
                ntoken=ntoken,
                d_model=int(args.get("embsize", args.get("d_model"))),
                nhead=int(args.get("nheads", args.get("nhead"))),
                d_hid=int(args["d_hid"]),
                nlayers=int(args["nlayers"]),
                dropout=float(args.get("dropout", 0.2)),
                pad_token_id=pad_token_id,
                pad_value=float(args.get("pad_value", -2)),
                mask_value=float(args.get("mask_value", -1)),
                n_bins=int(args.get("n_bins", 51)),
                input_emb_style=args.get("input_emb_style", "continuous"),
                norm_scheme="pre" if args.get("pre_norm", False) else "post",
                nlayers_cls=int(args.get("n_layers_cls", 3)),
                n_cls=1,
                do_mvc=bool(args.get("MVC", args.get("do_mvc", True))),
                explicit_zero_prob=bool(args.get("explicit_zero_prob", False)),
            )
        except (KeyError, TypeError) as err:
            msg = f"args.json lacks a model size field ({err}); is it a scGPT model folder?"
            raise ValueError(msg) from err
