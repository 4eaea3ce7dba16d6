"""Gene vocabularies in scGPT's ``vocab.json`` format (token -> id)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["SPECIAL_TOKENS", "GeneVocab"]

PAD, CLS, EOC = "<pad>", "<cls>", "<eoc>"
SPECIAL_TOKENS = (PAD, CLS, EOC)


class GeneVocab:
    """Gene symbol to token id, plus scGPT's special tokens.

    Parameters
    ----------
    token_to_id
        Mapping of every token (genes and ``<pad>``, ``<cls>``, ``<eoc>``) to its id.
    """

    def __init__(self, token_to_id: dict[str, int]) -> None:
        missing = [t for t in (PAD, CLS) if t not in token_to_id]
        if missing:
            msg = f"The vocabulary lacks the special tokens {missing}."
            raise ValueError(msg)
        self.token_to_id = dict(token_to_id)

    @classmethod
    def from_genes(cls, genes: Iterable[str]) -> GeneVocab:
        """Special tokens first, then the genes in the given order."""
        tokens = list(SPECIAL_TOKENS) + [g for g in dict.fromkeys(genes) if g not in SPECIAL_TOKENS]
        return cls({t: i for i, t in enumerate(tokens)})

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> GeneVocab:
        """Read a ``vocab.json``."""
        with open(path) as fh:
            data = json.load(fh)
        if not isinstance(data, dict) or not all(isinstance(v, int) for v in data.values()):
            msg = f"{path} is not a vocab.json (a JSON object of token -> integer id)."
            raise ValueError(msg)
        return cls(data)

    def save(self, path: str | os.PathLike) -> None:
        """Write a ``vocab.json``."""
        Path(path).write_text(json.dumps(self.token_to_id, indent=0, sort_keys=False))

    def __len__(self) -> int:
        return max(self.token_to_id.values()) + 1

    def __contains__(self, token: object) -> bool:
        return token in self.token_to_id

    def __getitem__(self, token: str) -> int:
        return self.token_to_id[token]

    @property
    def pad_id(self) -> int:
        """Id of ``<pad>``."""
        return self.token_to_id[PAD]

    @property
    def cls_id(self) -> int:
        """Id of ``<cls>``."""
        return self.token_to_id[CLS]

    def ids(self, genes: Iterable[str]) -> np.ndarray:
        """Token id of each gene, -1 for genes not in the vocabulary."""
        get = self.token_to_id.get
        return np.array(
            [get(g, -1) if g not in SPECIAL_TOKENS else -1 for g in genes], dtype=np.int64
        )
