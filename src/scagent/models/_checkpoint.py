"""Reading and writing encoder checkpoints: scGPT's published folders and our own."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .._errors import InputDataError
from .._files import atomic_folder, file_sha256
from ..nn import EncoderConfig, TransformerModel, remap_scgpt_state_dict
from ._vocab import GeneVocab

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "load_scgpt_checkpoint",
    "save_checkpoint",
    "scgpt_encoder_config",
    "weights_hash",
]

logger = logging.getLogger("scagent")

FORMAT = "scagent-encoder"
CONFIG, VOCAB, WEIGHTS = "config.json", "vocab.json", "model.safetensors"
_ESSENTIAL = ("encoder.", "value_encoder.", "transformer_encoder.")


class CheckpointError(InputDataError):
    """A model folder is missing, incomplete or does not match the architecture."""


def _need(folder: Path, *names: str) -> None:
    if not folder.is_dir():
        msg = f"Model folder {str(folder)!r} does not exist or is not a directory."
        raise CheckpointError(msg)
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        found = sorted(p.name for p in folder.iterdir())
        msg = f"Model folder {folder} lacks {missing}; found {found}."
        raise CheckpointError(msg)


def _load_state(model: TransformerModel, state: dict, source: Path) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    essential_missing = [k for k in missing if k.startswith(_ESSENTIAL)]
    if essential_missing:
        msg = f"{source}: weights for {essential_missing[:5]} are missing; not an scGPT encoder."
        raise CheckpointError(msg)
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    bad_essential = [k for k in bad if k.startswith(_ESSENTIAL)]
    if bad_essential:
        k = bad_essential[0]
        msg = (
            f"{source}: {k} has shape {tuple(state[k].shape)} in the checkpoint but "
            f"{tuple(own[k].shape)} in the model built from its config."
        )
        raise CheckpointError(msg)
    if bad:  # e.g. a fine-tuned cls_decoder with its own classes: not used to embed
        logger.info(
            "%s: %d decoder weights have another shape here (e.g. %s); left at initial values.",
            source,
            len(bad),
            bad[0],
        )
        state = {k: v for k, v in state.items() if k not in bad}
        missing += bad
    unexpected = [k for k in state if k not in own]
    if unexpected:
        logger.info(
            "%s: ignoring %d weights not used here (e.g. %s).",
            source,
            len(unexpected),
            unexpected[0],
        )
    if missing:
        logger.info("%s: %d decoder weights absent, left at initial values.", source, len(missing))
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def scgpt_encoder_config(args: dict, vocab: GeneVocab, state: dict) -> EncoderConfig:
    """The encoder config of a published scGPT folder.

    Sizes come from ``args.json``; the optional decoders (MVC, zero probability) are
    built when the (renamed, see :func:`~scagent.nn.remap_scgpt_state_dict`) state dict
    has their weights.
    """
    cfg = EncoderConfig.from_scgpt_args(args, ntoken=len(vocab), pad_token_id=vocab.pad_id)
    cfg.do_mvc = any(k.startswith("mvc_decoder.") for k in state)
    cfg.explicit_zero_prob = any(".zero_logit." in k for k in state)
    return cfg


def load_scgpt_checkpoint(folder: str | os.PathLike) -> tuple[TransformerModel, GeneVocab, dict]:
    """Load a published scGPT model folder (``args.json``, ``vocab.json``, ``best_model.pt``).

    The weights are read with ``torch.load(..., weights_only=True)`` (no pickled code runs)
    and their names converted from any scGPT attention layout. Decoder heads present in
    the checkpoint (MVC, zero-probability) are built to match it.

    Parameters
    ----------
    folder
        The model folder, e.g. ``scGPT_human``.

    Returns
    -------
    The model (in eval mode, on the CPU), its vocabulary and the ``args.json`` content.
    """
    folder = Path(folder).expanduser()
    _need(folder, "args.json", VOCAB, "best_model.pt")
    args = json.loads((folder / "args.json").read_text())
    vocab = GeneVocab.from_file(folder / VOCAB)
    try:
        state = torch.load(folder / "best_model.pt", map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for bad or unsafe pickles
        msg = f"Could not load {folder / 'best_model.pt'} safely (weights only): {err}"
        raise CheckpointError(msg) from err
    if isinstance(state, dict) and "model_state_dict" in state:
        state = state["model_state_dict"]
    state = remap_scgpt_state_dict(state)
    cfg = scgpt_encoder_config(args, vocab, state)
    emb = state.get("encoder.embedding.weight")
    if emb is not None and emb.shape[0] != cfg.ntoken:
        msg = (
            f"{folder}: vocab.json has {cfg.ntoken} tokens but the embedding has "
            f"{emb.shape[0]} rows."
        )
        raise CheckpointError(msg)
    model = TransformerModel(cfg)
    _load_state(model, state, folder)
    return model.eval(), vocab, args


def save_checkpoint(
    folder: str | os.PathLike,
    model: TransformerModel,
    vocab: GeneVocab,
    meta: dict,
    *,
    extra: dict[str, dict] | None = None,
) -> Path:
    """Write our checkpoint atomically: a new folder is filled, then renamed into place.

    Files: ``config.json`` (format, encoder config and ``meta``), ``vocab.json``,
    ``model.safetensors`` and, for each ``extra`` item, a ``torch.save`` file of tensors
    and numbers (read back with ``weights_only=True``).
    """
    folder = Path(folder).expanduser()
    with atomic_folder(folder) as tmp:
        state = {
            k: v.detach().cpu().contiguous()
            for k, v in model.state_dict().items()
            if ".adapters." not in k  # plugins are saved apart
        }
        save_file(state, tmp / WEIGHTS)
        vocab.save(tmp / VOCAB)
        config = {"format": FORMAT, "version": 1, "encoder": model.cfg.to_dict(), **meta}
        (tmp / CONFIG).write_text(json.dumps(config, indent=2))
        for name, obj in (extra or {}).items():
            torch.save(obj, tmp / name)
    return folder


def load_checkpoint(folder: str | os.PathLike) -> tuple[TransformerModel, GeneVocab, dict]:
    """Load one of our checkpoints (see :func:`save_checkpoint`)."""
    folder = Path(folder).expanduser()
    _need(folder, CONFIG, VOCAB, WEIGHTS)
    config = json.loads((folder / CONFIG).read_text())
    if config.get("format") != FORMAT:
        msg = (
            f"{folder / CONFIG} is not a scagent encoder config (format={config.get('format')!r})."
        )
        raise CheckpointError(msg)
    model = TransformerModel(EncoderConfig.from_dict(config["encoder"]))
    _load_state(model, load_file(folder / WEIGHTS), folder)
    return model.eval(), GeneVocab.from_file(folder / VOCAB), config


def weights_hash(folder: str | os.PathLike) -> str:
    """sha256 of a checkpoint's weight file (identifies the base model of a plugin)."""
    folder = Path(folder)
    path = folder / WEIGHTS if (folder / WEIGHTS).exists() else folder / "best_model.pt"
    return file_sha256(path)
