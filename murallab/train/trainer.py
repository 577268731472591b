"""The training loop: any murallab network, any loss preset, any dataset of ``{"image", "mask", "masked"}`` dicts.

    for phase in phases:                               # phases.py: what trains, lr, epochs, patience
        Adam(trainable parameters, lr) + cosine annealing over the phase's steps
        for epoch:
            for batch:  loss = loss_fn(model(batch), image, mask);  backward;  clip;  step
            validate -> PSNR / SSIM of the composite;  best.pt if better;  last.pt always
            stop early after `patience` epochs without improvement; stop with DivergedError if the loss explodes
        continue from the best weights so far

``fit`` is that loop; its parts are named functions here (``_train_phase``, ``_train_epoch``, ``_keep_best``,
``_divergence``, ``_follow_budget``), one step and validation are ``step.py``, where a run stands is ``Progress``
(``progress.py``) and what may be resumed is ``resume.py``.

Everything needed to continue is in ``last.pt`` (written atomically at the end of every epoch), so a killed run
resumed with ``resume=True`` loses at most the epoch it was in, and with ``deterministic=True`` on a CPU it
continues bit for bit as if never stopped: the data order and the masks depend only on the seed and the epoch.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler
from tqdm import tqdm

from .._device import device as pick_device
from ..checkpoint import load_checkpoint, save_checkpoint
from ..data import set_epoch
from . import distributed
from .lock import locks_run_folder
from .log import RunLog
from .phases import Phase, apply_phase
from .progress import Progress
from .resume import check_resumable
from .settings import AMP_DTYPES, TrainConfig, resolve_amp
from .step import NonFiniteLossError, _to, train_step, validate


class DivergedError(FloatingPointError):
    """A validation loss exceeded 100x the untrained network's (step 1) or the best one before it: training stopped,
    ``best.pt`` keeps the best epoch and ``last.pt`` the latest weights (the message names both)."""


def _replan(phase: Phase, done: int, seconds: float, last: float) -> int:
    """The epochs of a phase with a time budget, after ``done`` epochs that took ``seconds`` in all, the last
    ``last`` seconds: as many more as fit in what is left of ``phase.minutes`` at the last epoch's pace, within
    ``[done, phase.epochs]``."""
    more = math.floor((phase.minutes * 60 - seconds) / last) if last > 0 else phase.epochs
    return min(phase.epochs, done + max(0, more))


def _seed_everything(cfg: TrainConfig) -> None:
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def _loader(dataset, cfg: TrainConfig, epoch: int, *, train: bool, pin: bool = False) -> DataLoader:
    """Shuffled batches whose order depends only on (seed, epoch); sharded by rank under torchrun."""
    set_epoch(dataset, epoch if train else 0)  # fresh masks (and painted damage) every epoch
    common = dict(drop_last=train, num_workers=cfg.num_workers, pin_memory=pin)
    rank, size = distributed.world()
    if size > 1:
        sampler = DistributedSampler(dataset, num_replicas=size, rank=rank, shuffle=train, seed=cfg.seed,
                                     drop_last=train)
        sampler.set_epoch(epoch)
        return DataLoader(dataset, cfg.batch_size, sampler=sampler, **common)
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    return DataLoader(dataset, cfg.batch_size, shuffle=train, generator=g, **common)


def _by_source(sets) -> dict:
    """``{"main", "procedural", "both"}`` datasets (``Phase.data``) from one dataset or a main/procedural dict."""
    if not isinstance(sets, dict):
        return {"main": sets, "procedural": sets, "both": sets}
    return dict(sets, both=ConcatDataset([sets["main"], sets["procedural"]]))


@dataclass
class _Run:
    """What the parts of one ``fit`` share: the network (``net`` is it or its DDP wrapper), the loss, the settings,
    the run folder, its log and the progress."""

    model: torch.nn.Module
    net: torch.nn.Module
    loss_fn: torch.nn.Module
    cfg: TrainConfig
    device: torch.device
    amp: str | None
    config: dict
    out: Path
    log: RunLog | None = None
    progress: Progress = field(default_factory=Progress)

    @property
    def last_path(self) -> Path:
        return self.out / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out / "best.pt"

    @property
    def main(self) -> bool:
        return distributed.is_main()

    def save(self, path: Path, opt, sched, scaler) -> None:
        if self.main:
            save_checkpoint(path, model=self.model.state_dict(), optimizer=opt.state_dict(),
                            scheduler=sched.state_dict(), scaler=scaler.state_dict(), config=self.config,
                            progress=asdict(self.progress), rng={"torch": torch.get_rng_state()})

    def better(self, value: float, than: float | None) -> bool:
        return than is None or (value < than if self.cfg.monitor == "loss" else value > than)


def _start(model, loss_fn, cfg: TrainConfig, out: Path, config: dict) -> _Run:
    """Seed, pick the device and the autocast dtype, move the network there (DDP-wrapped under torchrun)."""
    _seed_everything(cfg)
    device = distributed.setup(pick_device(cfg.device))
    amp = resolve_amp(cfg.amp, device)
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("amp='fp16' needs a CUDA GPU; on a CPU use amp='bf16' or None")
    model.to(device, memory_format=torch.channels_last if cfg.channels_last else torch.preserve_format)
    loss_fn.to(device)
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                  find_unused_parameters=True) if distributed.world()[1] > 1 else model
    if cfg.compile:
        net.compile()
    return _Run(model, net, loss_fn, cfg, device, amp, config, out)


def _resume(run: _Run) -> dict:
    """Load ``last.pt`` into the run (after :func:`check_resumable`); returns the checkpoint."""
    ckpt = load_checkpoint(run.last_path)
    check_resumable(run.last_path, ckpt, run.config, run.model)
    run.model.load_state_dict(ckpt["model"])
    run.progress = Progress.from_dict(ckpt["progress"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if run.main:
        p = run.progress
        print(f"resuming {run.out} at phase {p.phase + 1}, epoch {p.epoch + 1}, step {p.step}")
    return ckpt


def _open_log(run: _Run, ckpt: dict | None, resume: bool) -> RunLog:
    log = RunLog(run.out, enabled=run.main, fresh=ckpt is None)
    if log.removed:
        print(f"{run.out}: the run there left no last.pt{' to resume' if resume else ''} (it stopped in its first "
              f"epoch); starting a new run, without its logs ({', '.join(log.removed)} removed)")
    elif resume and ckpt is None and run.main:
        print(f"{run.out}: nothing to resume (no last.pt there); starting a new run")
    if ckpt is not None:
        log.truncate(run.progress.step)
    return log


def _train_epoch(run: _Run, phase: Phase, loader, params, opt, sched, scaler, desc: str) -> None:
    """One pass over ``loader``: a ``train_step`` per batch, the learning-rate schedule, the log."""
    p, cfg = run.progress, run.cfg
    run.net.train()
    bar = tqdm(loader, desc=desc, disable=not (run.main and cfg.progress_bar), leave=False, mininterval=1.0)
    for batch in bar:
        batch = _to(batch, run.device, cfg.channels_last)
        try:
            total, terms, output = train_step(run.net, run.loss_fn, batch, opt, scaler=scaler,
                                              amp_dtype=AMP_DTYPES[run.amp], grad_clip=cfg.grad_clip, params=params)
        except NonFiniteLossError as e:
            kept = run.last_path if run.last_path.exists() else "(none yet: it failed in the first epoch)"
            raise NonFiniteLossError(
                f"the loss is {e.loss} at step {p.step + 1} (phase {phase.name!r}, epoch {p.epoch + 1}); terms: "
                f"{e.terms}. Training stopped; the last good checkpoint is kept at {kept}. Try a lower learning "
                f"rate, grad_clip, or amp=None.") from None
        sched.step()
        p.step += 1
        if p.step == 1:  # the untrained network's loss: the scale for the divergence check
            p.first_loss = total.item()
        if p.step % cfg.log_every == 0 or p.step == 1:
            run.log.scalars(p.step, {"train/loss": total.item(), "lr": sched.get_last_lr()[0],
                                     **{f"train/{k}": float(v) for k, v in terms.items()}})
            bar.set_postfix(loss=f"{total.item():.4f}")
        if p.step % cfg.image_every == 0:
            with torch.no_grad():
                restored = run.model.restored(output, batch)
            run.log.images(p.step, "train/masked|restored|target", [batch["masked"], restored, batch["image"]])
    bar.close()


def _follow_budget(run: _Run, phase: Phase, seconds: float, epochs: int, sched, steps_per_epoch: int) -> int:
    """A phase with a time budget: its epochs from the pace so far; the cosine stretches or shrinks to end with it."""
    p = run.progress
    seconds = distributed.mean_across_ranks({"s": seconds}, run.device)["s"]  # one plan for all ranks
    p.phase_seconds += seconds
    planned, epochs = epochs, _replan(phase, p.epoch, p.phase_seconds, seconds)
    p.phase_epochs = epochs
    sched.T_max = epochs * steps_per_epoch
    if run.main and epochs != planned:
        tqdm.write(f"{phase.name}: {p.phase_seconds / 60:.1f} of {phase.minutes:g} minutes spent, {seconds:.0f} s an "
                   f"epoch: {epochs} epochs in all")
    return epochs


def _keep_best(run: _Run, phase: Phase, val: dict, save_best) -> None:
    """Early-stopping counters and ``best.pt``. A best measured on other validation data (procedural murals before
    real ones) is not comparable, so a phase on new data starts the run's best afresh."""
    p, value = run.progress, val[run.cfg.monitor]
    if not all(math.isfinite(v) for v in val.values()):
        raise NonFiniteLossError(f"validation gave {val} after epoch {p.epoch} of phase {phase.name!r}; training "
                                 f"stopped, the last good checkpoint is kept at {run.last_path}")
    if run.better(value, p.phase_best):
        p.phase_best, p.bad_epochs = value, 0
    else:
        p.bad_epochs += 1
    if (p.best_data or phase.data) != phase.data or run.better(value, p.best):
        p.best, p.best_epoch, p.best_data = value, p.global_epoch, phase.data
        save_best()


def _divergence(run: _Run, phase: Phase, val: dict) -> str | None:
    """The error message when the validation loss is 100x the untrained network's (step 1) or the best one before
    it, else None; updates the best validation loss."""
    p, loss = run.progress, val["loss"]
    scale = min((x for x in (p.first_loss, p.best_val_loss) if x), default=None)
    if p.best_val_loss is None or loss < p.best_val_loss:
        p.best_val_loss = loss
    if not scale or loss <= 100 * scale:
        return None
    which = "the loss at step 1" if scale == p.first_loss else "the best validation loss"
    too = ", which diverged too" if p.best_epoch == p.global_epoch else ""
    return (f"the run diverged: validation loss {loss:.3g} after epoch {p.epoch} of phase {phase.name!r} is "
            f"{loss / scale:.3g}x {which} ({scale:.3g}). Training stopped: {run.best_path} keeps the best epoch by "
            f"{run.cfg.monitor} (epoch {p.best_epoch} of the run, {run.cfg.monitor} {p.best:.4g}){too}; "
            f"{run.last_path} holds the latest weights. Lower the learning rate (lr {phase.lr:g})")


def _train_phase(run: _Run, phase: Phase, train_set, val_set, ckpt: dict | None) -> None:
    """Adam and a cosine schedule over the phase's steps; epochs until the plan's last (a budget moves it) or early
    stopping; then the best weights so far are loaded for the next phase."""
    p, cfg, pin = run.progress, run.cfg, run.device.type == "cuda"
    val_loader = _loader(val_set, cfg, 0, train=False, pin=pin)
    params = apply_phase(run.model, phase)
    opt = torch.optim.Adam(params, lr=phase.lr)
    steps_per_epoch = len(_loader(train_set, cfg, 0, train=True))
    if steps_per_epoch == 0:
        raise ValueError(f"the training set has {len(train_set)} samples, fewer than one batch of {cfg.batch_size}: "
                         f"lower batch_size or add data")
    epochs = p.phase_epochs or phase.epochs  # a time budget's plan, once it has one
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler(run.device.type, enabled=run.amp == "fp16")
    if ckpt is not None and p.epoch > 0:  # resuming inside this phase
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])

    for epoch in itertools.count(p.epoch):
        t0 = time.perf_counter()
        loader = _loader(train_set, cfg, p.global_epoch, train=True, pin=pin)
        _train_epoch(run, phase, loader, params, opt, sched, scaler, f"{phase.name} {epoch + 1}/{epochs}")
        val = distributed.mean_across_ranks(validate(run.net, run.loss_fn, val_loader, run.device,
                                                     AMP_DTYPES[run.amp], cfg.channels_last), run.device)
        p.epoch, p.global_epoch = epoch + 1, p.global_epoch + 1
        seconds = time.perf_counter() - t0
        run.log.scalars(p.step, {f"val/{k}": v for k, v in val.items()} | {"epoch_seconds": seconds})
        if phase.minutes:
            epochs = _follow_budget(run, phase, seconds, epochs, sched, steps_per_epoch)
        _keep_best(run, phase, val, lambda: run.save(run.best_path, opt, sched, scaler))
        diverged = _divergence(run, phase, val)
        if diverged:
            run.save(run.last_path, opt, sched, scaler)
            run.log.close()
            raise DivergedError(diverged)
        stop = phase.patience is not None and p.bad_epochs >= phase.patience
        if stop:
            p.stopped_early.append(phase.name)
        over = stop or epoch + 1 >= epochs
        if over:  # phase over: the next one starts from the best weights so far
            distributed.barrier()  # rank 0 has written best.pt
            if run.best_path.exists():
                run.model.load_state_dict(load_checkpoint(run.best_path, map_location=run.device)["model"])
            p.next_phase()
        run.save(run.last_path, opt, sched, scaler)
        run.log.flush()
        if run.main:
            tqdm.write(f"{phase.name} epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in val.items())
                       + (" (best)" if p.best == val[cfg.monitor] else "")
                       + (f"; stopping early after {phase.patience} epochs without improvement" if stop else ""))
        if over:
            return


@locks_run_folder  # one run at a time in a folder
def fit(model, loss_fn, train_set, val_set, phases: list[Phase], cfg: TrainConfig, out_dir, *,
        resume: bool = False, config: dict | None = None) -> dict:
    """Train ``model`` through ``phases``; write ``last.pt``, ``best.pt`` and logs to ``out_dir``.

    Args:
        model: a murallab network (``inputs``, ``restored``, ``encoder_parameters``, ``freeze_encoder_bn``): a
            U-Net, the blind dual-decoder network or a ``DiffusionRestorer``; moved to the device here.
        loss_fn: ``loss_fn(model_output, image, mask) -> (total, {term: value})`` (a ``murallab.losses`` preset;
            ``DiffusionLoss`` for a diffusion model).
        train_set, val_set: datasets of dicts with ``image`` (3, H, W), ``mask`` (1, H, W), ``masked``
            (and ``corrupted`` for blind training); or dicts ``{"main": ds, "procedural": ds}`` when phases
            train on different data (``Phase.data``).
        config: the JSON-able run description stored in checkpoints (``config["model"]`` lets
            ``murallab.models.load_model`` rebuild the network).
        resume: continue from ``out_dir/last.pt`` (with the same network and phases, else ValueError:
            ``resume.py``). Without it an existing run in ``out_dir`` is an error. A folder without ``last.pt`` (a
            run that failed in its first epoch) starts afresh: the logs that run left are removed.
    Returns:
        ``{"best": value, "monitor": name, "best_checkpoint", "last_checkpoint", "steps", "epochs",
        "stopped_early": [phase names], "history": {tag: [[step, value], ...]}}``.
    Raises:
        DivergedError when a validation loss exceeds 100x the smaller of the loss at step 1 and the best validation
        loss before it (``best.pt`` keeps the best epoch by ``cfg.monitor``, ``last.pt`` the latest weights);
        NonFiniteLossError when the loss is NaN or inf.
    """
    out = Path(out_dir)
    if (out / "last.pt").exists() and not resume:
        raise FileExistsError(f"{out} already holds a run (last.pt). Pass resume=True (--resume) to continue it, "
                              f"or choose another output folder.")
    run = _start(model, loss_fn, cfg, out, dict(config or {}, phases=[p.to_dict() for p in phases], train=asdict(cfg)))
    ckpt = _resume(run) if resume and run.last_path.exists() else None
    run.log = _open_log(run, ckpt, resume)
    train_sets, val_sets = _by_source(train_set), _by_source(val_set)
    for i, phase in enumerate(phases):
        if i == run.progress.phase:
            _train_phase(run, phase, train_sets[phase.data], val_sets[phase.data], ckpt)
            ckpt = None
    run.log.close()
    distributed.cleanup()  # every rank waits (rank 0 wrote last.pt), then leaves the process group setup() joined
    p = run.progress
    return {"best": p.best, "monitor": cfg.monitor, "best_checkpoint": run.best_path,
            "last_checkpoint": run.last_path, "steps": p.step, "epochs": p.global_epoch,
            "stopped_early": p.stopped_early, "history": run.log.history}
