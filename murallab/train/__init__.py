"""Training: the loop (``fit``), one step and validation, phased plans, resume checks, logging, configs and torchrun
helpers.

    from murallab.train import load_config, build_run, fit
    cfg = load_config("configs/tiny_cpu.yaml")
    run = build_run(cfg)                                   # model, loss, datasets, phases, settings
    result = fit(run["model"], run["loss"], run["train_set"], run["val_set"], run["phases"], run["train"],
                 "runs/tiny", config=cfg)
"""

from ..checkpoint import load_checkpoint, save_checkpoint
from ..models import load_model
from .config import build_run, load_config
from .phases import Phase, apply_phase
from .progress import Progress
from .settings import TrainConfig
from .step import NonFiniteLossError, predict, train_step, validate
from .trainer import DivergedError, fit

__all__ = ["load_checkpoint", "load_model", "save_checkpoint", "build_run", "load_config", "Phase", "apply_phase",
           "NonFiniteLossError", "DivergedError", "Progress", "TrainConfig", "fit", "predict", "train_step", "validate"]
