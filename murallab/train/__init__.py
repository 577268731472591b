"""Training: the loop (``fit``), phased plans, checkpoints, logging, configs and torchrun helpers.

    from murallab.train import load_config, build_run, fit
    cfg = load_config("configs/tiny_cpu.yaml")
    run = build_run(cfg)                                   # model, loss, datasets, phases, settings
    result = fit(run["model"], run["loss"], run["train_set"], run["val_set"], run["phases"], run["train"],
                 "runs/tiny", config=cfg)
"""

from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .config import build_run, load_config
from .phases import Phase, apply_phase
from .trainer import NonFiniteLossError, TrainConfig, fit, predict, train_step, validate

__all__ = ["load_checkpoint", "load_model", "save_checkpoint", "build_run", "load_config", "Phase", "apply_phase",
           "NonFiniteLossError", "TrainConfig", "fit", "predict", "train_step", "validate"]
