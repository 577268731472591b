"""Where a training run stands (``Progress``), saved with every checkpoint so that a resumed run continues."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["Progress"]


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint (as a dict) so that a resumed run continues from it.

    phase, epoch: the current phase (index) and the epochs done in it; global_epoch, step: epochs and optimiser
    steps done in the run. best, best_epoch, best_data: the best value of ``TrainConfig.monitor`` so far, its epoch
    and the data it was validated on (``Phase.data``). phase_best, bad_epochs: the phase's best and the epochs since
    it improved (early stopping). stopped_early: phases that stopped early. first_loss: the loss at step 1;
    best_val_loss: the lowest validation loss (the divergence check's scales). phase_epochs, phase_seconds: a time
    budget's plan for the phase and the seconds it has spent.
    """

    phase: int = 0
    epoch: int = 0
    global_epoch: int = 0
    step: int = 0
    best: float | None = None
    best_epoch: int | None = None
    best_data: str | None = None
    phase_best: float | None = None
    bad_epochs: int = 0
    stopped_early: list[str] = field(default_factory=list)
    first_loss: float | None = None
    best_val_loss: float | None = None
    phase_epochs: int | None = None
    phase_seconds: float = 0.0

    @classmethod
    def from_dict(cls, saved: dict) -> Progress:
        """A checkpoint's progress; keys this version does not know are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in names})

    def next_phase(self) -> None:
        self.phase, self.epoch, self.phase_best, self.bad_epochs = self.phase + 1, 0, None, 0
        self.phase_epochs, self.phase_seconds = None, 0.0
