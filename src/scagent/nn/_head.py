"""Classification head with reserved slots for cell types that do not exist yet."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["N_SLOTS", "SlotHead"]

N_SLOTS = 200


class SlotHead(nn.Module):
    """An MLP from the cell embedding to ``n_slots`` logits, of which only some are in use.

    As in the paper, the output layer has reserved capacity (200 slots): the known classes
    take the first slots and the rest are masked to ``-inf`` until incremental learning
    fills them, so adding a class never changes the head's shape.

    Parameters
    ----------
    d_in
        Embedding width.
    n_active
        Slots in use.
    n_slots
        Total slots.
    n_hidden
        Hidden ``Linear-ReLU-LayerNorm`` blocks before the output layer (the authors use 2).
    """

    def __init__(self, d_in: int, n_active: int, n_slots: int = N_SLOTS, n_hidden: int = 2) -> None:
        super().__init__()
        if not 0 < n_active <= n_slots:
            msg = f"n_active must be in 1..{n_slots}, got {n_active}."
            raise ValueError(msg)
        blocks: list[nn.Module] = []
        for _ in range(n_hidden):
            blocks += [nn.Linear(d_in, d_in), nn.ReLU(), nn.LayerNorm(d_in)]
        self.hidden = nn.Sequential(*blocks)
        self.out = nn.Linear(d_in, n_slots)
        active = torch.zeros(n_slots, dtype=torch.bool)
        active[:n_active] = True
        self.register_buffer("active", active)
        # input standardisation (set from the training embeddings; identity until then)
        self.register_buffer("shift", torch.zeros(d_in))
        self.register_buffer("scale", torch.ones(d_in))

    @property
    def n_slots(self) -> int:
        """Total slots."""
        return self.out.out_features

    @property
    def n_active(self) -> int:
        """Slots in use."""
        return int(self.active.sum())

    def activate(self, slot: int) -> None:
        """Put a reserved slot into use."""
        if not 0 <= slot < self.n_slots:
            msg = f"Slot {slot} is outside 0..{self.n_slots - 1}."
            raise ValueError(msg)
        self.active[slot] = True

    def standardise_with(self, x: Tensor) -> None:
        """Standardise inputs like ``x`` (zero mean, unit variance per feature) from now on."""
        with torch.no_grad():
            self.shift.copy_(x.mean(0))
            self.scale.copy_(x.std(0).clamp_min(1e-6))

    def forward(self, x: Tensor) -> Tensor:
        logits = self.out(self.hidden((x - self.shift) / self.scale))
        return logits.masked_fill(~self.active, float("-inf"))
