"""Training plans: a list of phases, each naming what trains, its learning rate, epochs and patience.

The PConv paper and the seed projects train in phases:

- ``"all"``: every parameter trains (pretraining);
- ``"decoder"``: the encoder is frozen, weights and BatchNorm statistics alike; only the decoder learns
  (seed 000's phase 1, adapting a pretrained network to murals without disturbing its features);
- ``"frozen_encoder_bn"``: every weight trains, but the encoder's BatchNorm layers stay in eval mode
  (Liu et al.'s fine-tuning: holes bias the batch statistics, so the encoder keeps those it learned).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

TRAINABLE = ("all", "decoder", "frozen_encoder_bn")


@dataclass
class Phase:
    """One phase of a plan.

    patience: epochs without a better validation metric before stopping (None: never).
    data: "main" (the run's data), "procedural" (the built-in murals, e.g. to pretrain before real data) or "both"
        (the two together, validated on both).
    minutes: a wall-clock budget. The phase then trains as many epochs as fit in it (at most ``epochs``): after
        each epoch, what is left of the budget at that epoch's pace sets the last epoch, and the cosine learning
        rate stretches or shrinks to end near zero there. A resumed run counts the time spent before it stopped.
    """

    name: str
    lr: float
    epochs: int
    patience: int | None = None
    train: str = "all"
    data: str = "main"
    minutes: float | None = None

    def __post_init__(self):
        if self.train not in TRAINABLE:
            raise ValueError(f"phase {self.name!r}: train must be one of {TRAINABLE}, got {self.train!r}")
        if self.data not in ("main", "procedural", "both"):
            raise ValueError(f"phase {self.name!r}: data must be 'main', 'procedural' or 'both', got {self.data!r}")
        if self.epochs < 1 or self.lr <= 0:
            raise ValueError(f"phase {self.name!r}: need epochs >= 1 and lr > 0, got {self.epochs} and {self.lr}")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"phase {self.name!r}: minutes is a time budget > 0 (or null: none), got {self.minutes}")

    def to_dict(self) -> dict:
        return asdict(self)


def apply_phase(model: nn.Module, phase: Phase) -> list[nn.Parameter]:
    """Set ``requires_grad`` and the encoder BatchNorm mode for ``phase``; return the parameters that train.

    ``model`` must offer ``encoder_parameters()`` and ``freeze_encoder_bn()`` (every murallab U-Net does).
    """
    freeze_encoder = phase.train == "decoder"
    encoder = {id(p) for p in model.encoder_parameters()}
    for p in model.parameters():
        p.requires_grad_(not (freeze_encoder and id(p) in encoder))
    model.freeze_encoder_bn(phase.train != "all")
    return [p for p in model.parameters() if p.requires_grad]
