"""MoE-LoRA: low-rank experts mixed by a softmax gate (the paper's eq. 6), tensor-only.

``W = W0 + sum_i g(x)_i B_i A_i`` with ``g(x) = softmax(x W_r)``, per token. Adapters are
named, so several plugins can sit on ONE frozen base model and be switched by name without
rebuilding or reloading it (as PEFT's named adapters do).

Targets are output slices of a linear layer: on the fused ``Wqkv`` projection of
:class:`~scagent.nn.SelfAttention` the targets ``"q"``, ``"k"`` and ``"v"`` are its three
row blocks; ``"o"`` is ``out_proj``. The authors adapt ``q`` and ``v`` in every layer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "AdaptedLinear",
    "MoELoRA",
    "MoELoRAConfig",
    "active_adapter",
    "adapter_active",
    "adapter_names",
    "adapter_state_dict",
    "add_adapter",
    "load_adapter_state",
    "remove_adapter",
    "set_adapter",
]

TARGETS = ("q", "k", "v", "o")


@dataclass(frozen=True)
class MoELoRAConfig:
    """Shape of one MoE-LoRA adapter.

    Attributes
    ----------
    n_experts
        LoRA experts per adapted projection (paper: 5).
    rank
        Rank of each expert (paper: 8).
    alpha
        LoRA scaling numerator; the update is multiplied by ``alpha / rank``.
    dropout
        Dropout on the adapter's input while training.
    targets
        Which attention projections to adapt, a subset of ``("q", "k", "v", "o")``.
    """

    n_experts: int = 5
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    targets: tuple[str, ...] = field(default=("q", "v"))

    def __post_init__(self) -> None:
        bad = [t for t in self.targets if t not in TARGETS]
        if bad or not self.targets:
            msg = f"MoE-LoRA targets must be a non-empty subset of {TARGETS}, got {self.targets}."
            raise ValueError(msg)
        if self.n_experts < 1 or self.rank < 1:
            msg = f"n_experts and rank must be >= 1, got {self.n_experts} and {self.rank}."
            raise ValueError(msg)
        object.__setattr__(self, "targets", tuple(self.targets))

    def to_dict(self) -> dict:
        """JSON-ready form."""
        d = asdict(self)
        d["targets"] = list(self.targets)
        return d


class MoELoRA(nn.Module):
    """The update ``sum_i g(x)_i B_i A_i x`` for one projection.

    Because ``g(x)_i`` is a scalar per token, ``g_i B_i (A_i x) = B_i (g_i A_i x)``: all
    experts run as one ``(in, n*r)`` and one ``(n*r, out)`` matmul.

    Parameters
    ----------
    in_features, out_features
        Shape of the adapted projection.
    cfg
        Experts, rank, scaling, dropout.
    """

    def __init__(self, in_features: int, out_features: int, cfg: MoELoRAConfig) -> None:
        super().__init__()
        self.n_experts, self.rank = cfg.n_experts, cfg.rank
        self.scaling = cfg.alpha / cfg.rank
        self.dropout = cfg.dropout
        self.gate = nn.Linear(in_features, cfg.n_experts, bias=False)  # W_r
        self.A = nn.Parameter(torch.empty(cfg.n_experts * cfg.rank, in_features))
        self.B = nn.Parameter(torch.zeros(out_features, cfg.n_experts * cfg.rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # B = 0: the update starts at zero
        nn.init.normal_(self.gate.weight, std=0.02)

    def gates(self, x: Tensor) -> Tensor:
        """(..., n_experts) softmax gate weights."""
        return torch.softmax(self.gate(x), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.dropout(x, self.dropout, self.training)
        g = self.gates(x).repeat_interleave(self.rank, dim=-1)
        return F.linear(F.linear(x, self.A) * g, self.B) * self.scaling


class AdaptedLinear(nn.Module):
    """A frozen linear layer plus named MoE-LoRA adapters on slices of its output.

    The base ``weight`` and ``bias`` keep their names, so the base model's state dict is
    unchanged; adapter weights live under ``adapters.<name>.<target>``.

    Parameters
    ----------
    base
        The layer to adapt.
    slices
        Target name -> (start, stop) rows of the output it adapts.
    """

    def __init__(self, base: nn.Linear, slices: dict[str, tuple[int, int]]) -> None:
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.slices = dict(slices)
        self.adapters = nn.ModuleDict()
        self.active: str | None = None

    def add(self, name: str, cfg: MoELoRAConfig) -> None:
        """Create adapter ``name`` on the targets of ``cfg`` this layer holds."""
        mods = nn.ModuleDict()
        for t in cfg.targets:
            if t in self.slices:
                lo, hi = self.slices[t]
                mods[t] = MoELoRA(self.in_features, hi - lo, cfg).to(self.weight.device)
        self.adapters[name] = mods.train(self.training)

    def forward(self, x: Tensor) -> Tensor:
        out = F.linear(x, self.weight, self.bias)
        if self.active is None or self.active not in self.adapters:
            return out
        for t, mod in self.adapters[self.active].items():
            lo, hi = self.slices[t]
            out[..., lo:hi] = out[..., lo:hi] + mod(x).to(out.dtype)
        return out


def _adapted_layers(model: nn.Module) -> list[AdaptedLinear]:
    return [m for m in model.modules() if isinstance(m, AdaptedLinear)]


def _wrap_attention(model: nn.Module) -> None:
    """Replace every attention ``Wqkv`` / ``out_proj`` by an :class:`AdaptedLinear` (once)."""
    from ._transformer import SelfAttention

    for attn in [m for m in model.modules() if isinstance(m, SelfAttention)]:
        if not isinstance(attn.Wqkv, AdaptedLinear):
            d = attn.Wqkv.in_features
            qkv = {"q": (0, d), "k": (d, 2 * d), "v": (2 * d, 3 * d)}
            attn.Wqkv = AdaptedLinear(attn.Wqkv, qkv).train(attn.training)
        if not isinstance(attn.out_proj, AdaptedLinear):
            o = {"o": (0, attn.out_proj.out_features)}
            attn.out_proj = AdaptedLinear(attn.out_proj, o).train(attn.training)


def add_adapter(model: nn.Module, name: str, cfg: MoELoRAConfig) -> list[nn.Parameter]:
    """Add a MoE-LoRA adapter called ``name`` to every attention layer of ``model``.

    Parameters
    ----------
    model
        A :class:`~scagent.nn.TransformerModel` (or any module with ``SelfAttention``).
    name
        Adapter name; replaces an existing adapter of that name.
    cfg
        Adapter shape.

    Returns
    -------
    The new adapter's parameters (the only ones to train).
    """
    if not name or "." in name:
        msg = f"Adapter names must be non-empty and contain no '.', got {name!r}."
        raise ValueError(msg)
    _wrap_attention(model)
    params = []
    for layer in _adapted_layers(model):
        layer.add(name, cfg)
        params.extend(layer.adapters[name].parameters())
    return params


def set_adapter(model: nn.Module, name: str | None) -> None:
    """Make adapter ``name`` active in every layer (``None``: the plain base model)."""
    layers = _adapted_layers(model)
    if name is not None and not any(name in layer.adapters for layer in layers):
        msg = f"No adapter {name!r} on this model; it has {adapter_names(model)}."
        raise KeyError(msg)
    for layer in layers:
        layer.active = name


@contextmanager
def adapter_active(model: nn.Module, name: str | None) -> Iterator[None]:
    """Run a block with adapter ``name`` active (``None``: the plain base model).

    Whatever happens inside (an exception, an interrupt), the adapter that was active
    before is active again afterwards, or the plain model if that adapter was removed
    in the meantime.
    """
    previous = active_adapter(model)
    set_adapter(model, name)
    try:
        yield
    finally:
        still_there = previous is None or previous in adapter_names(model)
        set_adapter(model, previous if still_there else None)


def active_adapter(model: nn.Module) -> str | None:
    """Name of the active adapter (``None`` when the base model runs plain)."""
    layers = _adapted_layers(model)
    return layers[0].active if layers else None


def adapter_names(model: nn.Module) -> list[str]:
    """Names of the adapters attached to ``model``."""
    names: set[str] = set()
    for layer in _adapted_layers(model):
        names.update(layer.adapters.keys())
    return sorted(names)


def remove_adapter(model: nn.Module, name: str) -> None:
    """Detach adapter ``name`` (a no-op if absent)."""
    for layer in _adapted_layers(model):
        if name in layer.adapters:
            del layer.adapters[name]
        if layer.active == name:
            layer.active = None


def adapter_state_dict(model: nn.Module, name: str) -> dict[str, Tensor]:
    """The weights of adapter ``name``, keyed by module path without the adapter name.

    Keys look like ``transformer_encoder.layers.0.self_attn.Wqkv.q.A``, so the same
    adapter loads onto any model of the same shape under any name.
    """
    out = {}
    for path, layer in model.named_modules():
        if isinstance(layer, AdaptedLinear) and name in layer.adapters:
            for key, value in layer.adapters[name].state_dict().items():
                out[f"{path}.{key}"] = value.detach().cpu().clone()
    return out


def load_adapter_state(model: nn.Module, name: str, state: dict[str, Tensor]) -> None:
    """Load weights from :func:`adapter_state_dict` into adapter ``name`` (strict)."""
    own = adapter_state_dict(model, name)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        msg = (
            f"Adapter weights do not fit this model: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}."
        )
        raise ValueError(msg)
    for path, layer in model.named_modules():
        if isinstance(layer, AdaptedLinear) and name in layer.adapters:
            prefix = f"{path}."
            sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            try:
                layer.adapters[name].load_state_dict(sub, strict=True)
            except RuntimeError as err:
                msg = f"Adapter weights under {path} do not fit this model: {err}"
                raise ValueError(msg) from err
