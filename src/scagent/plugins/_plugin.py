"""A plugin on disk: MoE-LoRA weights + gate + slot head (safetensors) and a JSON manifest."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .._errors import InputDataError
from .._files import atomic_folder, file_sha256
from ..nn import N_SLOTS, MoELoRAConfig

__all__ = ["KINDS", "Plugin", "PluginError"]

FORMAT = "scagent-plugin"
FORMAT_VERSION = 1
MANIFEST, WEIGHTS = "manifest.json", "weights.safetensors"
#: ``tissue_assignment`` predicts tissues; ``cell_type`` predicts types within one tissue.
KINDS = ("tissue_assignment", "cell_type")


class PluginError(InputDataError):
    """A plugin is missing, damaged, or does not fit the loaded encoder."""


@dataclass
class Plugin:
    """MoE-LoRA adapter, gate and classification head for one task, with its metadata.

    Attributes
    ----------
    name
        Registry name: ``"tissue"`` for the tissue-assignment plugin, the tissue name for
        a cell-type plugin.
    kind
        One of :data:`KINDS`.
    tissue
        The tissue a cell-type plugin covers (``None`` for tissue assignment).
    labels
        Class name of each used head slot, in slot order.
    ontology_ids
        Cell Ontology id per label (``""`` where none applies, e.g. tissues).
    lora
        Adapter shape.
    head_hidden
        Hidden blocks of the head.
    n_slots
        Head capacity (200).
    max_len
        Tokens per cell (``<cls>`` included) the plugin reads; 0: the encoder's own.
    temperature
        Softmax temperature (confidence calibration), fitted on held-out calibration cells;
        1 where there were too few such cells or where cross-fitting did not show it
        improving cells it was not fitted on.
    base_model, base_sha256
        The encoder the plugin was trained on; it only loads onto that encoder.
    state
        Tensors: ``lora.<path>`` adapter weights and ``head.<param>`` head weights.
    training
        Data summary (cells per class, datasets, split sizes, settings, seconds).
    metrics
        Training outcome and held-out metrics: ``adapter_trained`` and ``adapter_note``
        (see :attr:`adapter_trained`), ``best_epoch``, early-stopping losses,
        ``temperature_note``, and accuracy, macro-F1, ECE and ``per_class`` metrics of the
        calibration cells (see :func:`~scagent.plugins.train_plugin`).
    version
        Registry version (set when saved).
    digest
        sha256 of the weights (identifies the plugin on a host).
    created
        ISO time of training.
    """

    name: str
    kind: str
    tissue: str | None
    labels: list[str]
    ontology_ids: list[str]
    lora: MoELoRAConfig
    head_hidden: int
    base_model: str
    base_sha256: str
    state: dict[str, torch.Tensor] = field(repr=False)
    n_slots: int = N_SLOTS
    max_len: int = 0
    temperature: float = 1.0
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    version: int = 0
    digest: str = ""
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            msg = f"Plugin kind must be one of {KINDS}, got {self.kind!r}."
            raise PluginError(msg)
        if len(self.labels) != len(self.ontology_ids):
            msg = "labels and ontology_ids must have the same length."
            raise PluginError(msg)
        if not 0 < len(self.labels) <= self.n_slots:
            msg = f"A plugin needs 1..{self.n_slots} labels, got {len(self.labels)}."
            raise PluginError(msg)

    @property
    def key(self) -> str:
        """Adapter name on the host model: ``name@vN#<weights digest>``."""
        if not self.digest:
            h = hashlib.sha256()
            for k in sorted(self.state):
                h.update(k.encode())
                h.update(self.state[k].detach().cpu().contiguous().numpy().tobytes())
            self.digest = h.hexdigest()
        return f"{self.name}@v{self.version}#{self.digest[:12]}"

    @property
    def adapter_trained(self) -> bool:
        """Whether the MoE-LoRA adapter was fine-tuned.

        ``False`` where training ended at the head-only probe (too few cells, or
        fine-tuning made the plugin worse; ``metrics['adapter_note']`` says which): the
        plugin is then the frozen encoder plus its head. Plugins whose manifest predates
        the flag are judged by their weights (an untrained adapter's B matrices are zero).
        """
        flag = self.metrics.get("adapter_trained")
        if flag is not None:
            return bool(flag)
        return any(
            bool(v.abs().max() > 0)
            for k, v in self.state.items()
            if k.startswith("lora.") and k.endswith(".B")
        )

    def lora_state(self) -> dict[str, torch.Tensor]:
        """Adapter weights (keys without the ``lora.`` prefix)."""
        return {k[5:]: v for k, v in self.state.items() if k.startswith("lora.")}

    def head_state(self) -> dict[str, torch.Tensor]:
        """Head weights (keys without the ``head.`` prefix)."""
        return {k[5:]: v for k, v in self.state.items() if k.startswith("head.")}

    def manifest(self, weights_sha256: str) -> dict:
        """The JSON manifest."""
        from .. import __version__

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "kind": self.kind,
            "tissue": self.tissue,
            "version": self.version,
            "created": self.created,
            "scagent_version": __version__,
            "base_model": {"name": self.base_model, "sha256": self.base_sha256},
            "moe_lora": self.lora.to_dict(),
            "head": {
                "n_slots": self.n_slots,
                "n_hidden": self.head_hidden,
                "slots": [
                    {"slot": i, "label": lab, "ontology_id": oid}
                    for i, (lab, oid) in enumerate(zip(self.labels, self.ontology_ids))
                ],
            },
            "tokens": {"max_len": self.max_len},
            "temperature": self.temperature,
            "training": self.training,
            "metrics": self.metrics,
            "weights": {"file": WEIGHTS, "sha256": weights_sha256},
        }

    def save(self, folder: str | os.PathLike, *, replace: bool = False) -> Path:
        """Write ``manifest.json`` and ``weights.safetensors`` atomically into ``folder``."""
        folder = Path(folder)
        with atomic_folder(folder, replace=replace) as tmp:
            tensors = {k: v.detach().cpu().contiguous() for k, v in self.state.items()}
            save_file(tensors, tmp / WEIGHTS, metadata={"format": FORMAT})
            digest = file_sha256(tmp / WEIGHTS)
            (tmp / MANIFEST).write_text(json.dumps(self.manifest(digest), indent=2))
        self.digest = digest
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Plugin:
        """Read a plugin folder, checking its format and the weights' checksum."""
        folder = Path(folder)
        if not (folder / MANIFEST).is_file() or not (folder / WEIGHTS).is_file():
            msg = f"{folder} is not a plugin folder (needs {MANIFEST} and {WEIGHTS})."
            raise PluginError(msg)
        try:
            m = json.loads((folder / MANIFEST).read_text())
        except json.JSONDecodeError as err:
            msg = f"{folder / MANIFEST} is not valid JSON: {err}"
            raise PluginError(msg) from err
        if m.get("format") != FORMAT or m.get("format_version", 0) > FORMAT_VERSION:
            msg = (
                f"{folder / MANIFEST}: format {m.get('format')!r} v{m.get('format_version')} "
                f"is not a plugin this scagent reads ({FORMAT} v<={FORMAT_VERSION})."
            )
            raise PluginError(msg)
        digest = file_sha256(folder / WEIGHTS)
        if digest != m["weights"]["sha256"]:
            msg = f"{folder / WEIGHTS} does not match the checksum in its manifest (damaged)."
            raise PluginError(msg)
        slots = sorted(m["head"]["slots"], key=lambda s: s["slot"])
        lora = m["moe_lora"]
        return cls(
            name=m["name"],
            kind=m["kind"],
            tissue=m["tissue"],
            labels=[s["label"] for s in slots],
            ontology_ids=[s["ontology_id"] for s in slots],
            lora=MoELoRAConfig(**{**lora, "targets": tuple(lora["targets"])}),
            head_hidden=int(m["head"]["n_hidden"]),
            base_model=m["base_model"]["name"],
            base_sha256=m["base_model"]["sha256"],
            state=load_file(folder / WEIGHTS),
            n_slots=int(m["head"]["n_slots"]),
            max_len=int(m.get("tokens", {}).get("max_len", 0)),
            temperature=float(m["temperature"]),
            training=m.get("training", {}),
            metrics=m.get("metrics", {}),
            version=int(m["version"]),
            digest=digest,
            created=m["created"],
        )
