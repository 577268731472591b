"""The training loop: any murallab network, any loss preset, any dataset of ``{"image", "mask", "masked"}`` dicts.

    for phase in phases:                               # phases.py: what trains, lr, epochs, patience
        Adam(trainable parameters, lr) + cosine annealing over the phase's steps
        for epoch:
            for batch:  loss = loss_fn(model(batch), image, mask);  backward;  clip;  step
            validate -> PSNR / SSIM of the composite;  best.pt if better;  last.pt always
            stop early after `patience` epochs without improvement
        continue from the best weights so far

Everything needed to continue is in ``last.pt`` (written atomically at the end of every epoch), so a killed run
resumed with ``resume=True`` loses at most the epoch it was in, and with ``deterministic=True`` on a CPU it
continues bit for bit as if never stopped: the data order and the masks depend only on the seed and the epoch.
"""

from __future__ import annotations

import inspect
import itertools
import math
import os
import time
import warnings
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler
from tqdm import tqdm

from .. import metrics
from .._device import device as pick_device
from ..data import set_epoch
from . import distributed
from .checkpoint import load_checkpoint, save_checkpoint
from .lock import locks_run_folder
from .log import RunLog
from .phases import Phase, apply_phase


#: TrainConfig.amp -> the autocast dtype (None: fp32, autocast off)
AMP_DTYPES = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_amp(amp: str | None, device) -> str | None:
    """``TrainConfig.amp`` with ``"auto"`` made concrete for ``device``: bf16 where the hardware runs it natively (a
    CUDA GPU with bf16, or a CPU with AMX tiles), else None (fp32); any other value is returned as is."""
    if amp != "auto":
        return amp
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else None
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    return "bf16" if device.type == "cpu" and amx() else None


@dataclass
class TrainConfig:
    """Settings shared by all phases.

    amp: None (fp32), "bf16", "fp16" (CUDA only, with a GradScaler) or "auto" (bf16 where the hardware has it,
        else fp32: :func:`resolve_amp`). Off by default: on CPUs without bf16 hardware, bf16 autocast measured 3.5x
        slower than fp32; on one with AMX (``amx_bf16`` in /proc/cpuinfo), 1.33x faster, 1.49x with
        ``channels_last`` (BENCHMARKS.md).
    monitor: the validation metric for early stopping and ``best.pt`` (higher is better): "psnr", "ssim" or
        "psnr_hole"; or "loss" (lower is better).
    channels_last: keep the network's weights and every batch in NHWC memory ("channels last"), the layout in
        which a GPU's tensor cores run bf16 and fp16 convolutions without transposing; the same numbers as NCHW.
    compile: ``torch.compile`` the network (``nn.Module.compile``: its weights and checkpoints are unchanged); the
        first steps are slow while it compiles, and on a CPU it needs a C++ compiler.
    num_workers: data-loader processes (pinned memory on CUDA). They are started afresh every epoch, not
        persistent: each epoch draws new masks (``set_epoch``), which workers kept alive would not see.
    """

    batch_size: int = 8
    grad_clip: float | None = 1.0
    amp: str | None = None
    seed: int = 0
    deterministic: bool = False
    monitor: str = "psnr"
    log_every: int = 10
    image_every: int = 100
    num_workers: int = 0
    device: str | None = None
    progress_bar: bool = True
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self):
        if self.amp not in (None, "bf16", "fp16", "auto"):
            raise ValueError(f"amp must be None, 'bf16', 'fp16' or 'auto', got {self.amp!r}")
        if self.monitor not in ("psnr", "ssim", "psnr_hole", "loss"):
            raise ValueError(f"monitor must be psnr, ssim, psnr_hole or loss, got {self.monitor!r}")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or inf; training stopped and the last good checkpoint was kept.

    ``loss`` is the value, ``terms`` the loss terms as text (``"hole=nan, tv=0.01"``)."""

    def __init__(self, message: str, loss: float | None = None, terms: str = ""):
        super().__init__(message)
        self.loss, self.terms = loss, terms


def _net(model):
    """The network inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def predict(model, batch: dict):
    """Run ``model`` (possibly DDP-wrapped, so gradients synchronise) on a batch, with the network's own inputs:
    ``(masked, mask)`` for a mask-guided network, the corrupted image for a blind one (``murallab.nn``)."""
    return model(*_net(model).inputs(batch))


def _to(batch: dict, device, channels_last: bool = False) -> dict:
    def move(v):
        nhwc = channels_last and v.dim() == 4
        return v.to(device, non_blocking=True, memory_format=torch.channels_last if nhwc else torch.preserve_format)
    return {k: move(v) if torch.is_tensor(v) else v for k, v in batch.items()}


def train_step(net, loss_fn, batch: dict, opt, *, scaler=None, amp_dtype=None, grad_clip=None, params=None):
    """One optimisation step on a batch already on the device; returns ``(total, terms, output)``.

    Forward and loss under autocast (``amp_dtype`` bf16/fp16, or None for fp32), then backward, gradient-norm
    clipping of ``params`` (default: all of ``net``'s) at ``grad_clip``, and the optimiser step, through ``scaler``
    (a ``torch.amp.GradScaler``, for fp16). A loss that is NaN or inf raises NonFiniteLossError before anything
    is updated, naming the loss terms.
    """
    device_type = batch["image"].device.type
    with torch.autocast(device_type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        output = predict(net, batch)
        total, terms = loss_fn(output, batch["image"], batch["mask"])
    if not torch.isfinite(total):
        shown = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
        raise NonFiniteLossError(f"the loss is {total.item()}; terms: {shown}", total.item(), shown)
    scaler = scaler or torch.amp.GradScaler(device_type, enabled=False)
    opt.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    if grad_clip:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params if params is not None else net.parameters(), grad_clip)
    scaler.step(opt)
    scaler.update()
    return total, terms, output


@torch.no_grad()
def validate(model, loss_fn, loader, device, amp_dtype=None, channels_last: bool = False) -> dict[str, float]:
    """Mean loss, PSNR, SSIM and hole-only PSNR of the composite over ``loader`` (per image, then averaged).

    For a blind network also the IoU of its damage map (P(damage) >= ``metrics.DAMAGE_THRESHOLD``) with the true
    holes.
    """
    model.eval()
    sums, n = {}, 0
    for batch in loader:
        batch = _to(batch, device, channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            out = predict(model, batch)
            total, _ = loss_fn(out, batch["image"], batch["mask"])
        restored, image, mask = _net(model).restored(out, batch), batch["image"], batch["mask"]
        b = len(image)
        values = {"loss": total.item() * b,
                  "psnr": metrics.psnr(restored, image, reduction="none").clamp(max=100).sum().item(),
                  "ssim": metrics.ssim(restored, image, reduction="none").sum().item(),
                  "psnr_hole": metrics.psnr(restored, image, mask, reduction="none").clamp(max=100).sum().item()}
        if _net(model).blind:
            damaged = out[1].float() >= metrics.DAMAGE_THRESHOLD
            values["damage_iou"] = metrics.iou(damaged, mask < 0.5, reduction="none").sum().item()
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        n += b
    model.train()
    return {k: v / max(n, 1) for k, v in sums.items()}


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


def _check_resumable(path: Path, ckpt: dict, config: dict, model) -> None:
    """Resuming ``path`` with another network than the one it was trained with is an error, in one line that names
    both (the model settings of the checkpoint and of the config, with the first parameter that differs); so is
    resuming with other phases."""
    from ..nn import MODELS

    def full(spec):  # the constructor's defaults filled in: {name: PConvUNet, base: 8} == {..., layers: 7}
        spec = dict(spec or {})
        name = spec.pop("name", None)
        try:
            bound = inspect.signature(MODELS[name]).bind(**spec)
        except (KeyError, TypeError):
            return name, spec
        bound.apply_defaults()
        return name, dict(bound.arguments)

    def show(spec):
        return "{" + ", ".join(f"{k}: {v}" for k, v in spec.items()) + "}"

    saved, asked = (ckpt.get("config") or {}).get("model"), config.get("model")
    theirs, ours = ckpt["model"], model.state_dict()
    shapes = [f"{k} is {tuple(theirs[k].shape)} there, {tuple(v.shape)} here" for k, v in ours.items()
              if k in theirs and theirs[k].shape != v.shape]
    only = sorted(set(ours) ^ set(theirs))
    if shapes or only or (saved and asked and full(saved) != full(asked)):
        detail = shapes[0] if shapes else f"{only[0]} is in only one of them" if only else ""
        raise ValueError(f"{path} was trained with " + (f"model {show(saved)}" if saved else "another network")
                         + (f"; this config asks for {show(asked)}" if asked else "")
                         + (f" ({detail})" if detail else "")
                         + ": resume with the same model settings, or choose another output folder (--out)")
    _check_same_phases(path, (ckpt.get("config") or {}).get("phases"), config.get("phases"))


def _check_same_phases(path: Path, saved, asked) -> None:
    """Resuming with other phases is an error: each phase's cosine schedule was fixed by its epochs when it started,
    so a resumed run with more epochs would anneal to zero at the old end and then climb again."""
    if not saved or not asked:
        return
    defaults = {f.name: f.default for f in fields(Phase) if f.default is not MISSING}  # keys newer than the run
    saved, asked = [defaults | p for p in saved], [defaults | p for p in asked]
    if saved == asked:
        return
    if len(saved) != len(asked):
        detail = f"{len(saved)} phases there, {len(asked)} here"
    else:
        i, a, b = next((i, a, b) for i, (a, b) in enumerate(zip(saved, asked)) if a != b)
        key = next(k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
        detail = f"phase {i + 1} ({b.get('name', '?')!r}) has {key} {a.get(key)!r} there, {b.get(key)!r} here"
    raise ValueError(f"{path} was trained with other phases ({detail}): resume with the same phases (a phase's "
                     f"learning-rate schedule is fixed by its epochs), or start a new run in another folder (--out) "
                     f"from its weights (init: {path})")


@locks_run_folder  # one run at a time in a folder
def fit(model, loss_fn, train_set, val_set, phases: list[Phase], cfg: TrainConfig, out_dir, *,
        resume: bool = False, config: dict | None = None) -> dict:
    """Train ``model`` through ``phases``; write ``last.pt``, ``best.pt`` and logs to ``out_dir``.

    Args:
        model: a murallab network (``encoder_parameters``, ``freeze_encoder_bn``); moved to the device here.
        loss_fn: ``loss_fn(model_output, image, mask) -> (total, {term: value})`` (a ``murallab.losses`` preset).
        train_set, val_set: datasets of dicts with ``image`` (3, H, W), ``mask`` (1, H, W), ``masked``
            (and ``corrupted`` for blind training); or dicts ``{"main": ds, "procedural": ds}`` when phases
            train on different data (``Phase.data``).
        config: the JSON-able run description stored in checkpoints (``config["model"]`` lets
            ``load_model`` rebuild the network).
        resume: continue from ``out_dir/last.pt`` (with the same network, else ValueError). Without it an existing
            run in ``out_dir`` is an error. A folder without ``last.pt`` (a run that failed in its first epoch)
            starts afresh: the logs that run left (metrics.csv, metrics.json, TensorBoard events) are removed.
    Returns:
        ``{"best": value, "monitor": name, "best_checkpoint", "last_checkpoint", "steps", "epochs",
        "stopped_early": [phase names], "diverged": bool, "history": {tag: [[step, value], ...]}}``.
        A run diverges when a validation loss exceeds 100x the smaller of the loss at step 1 and the best validation
        loss before it; it then warns (RuntimeWarning) once and trains on; ``best.pt`` stays the best epoch by
        ``cfg.monitor``.
    """
    out = Path(out_dir)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if last_path.exists() and not resume:
        raise FileExistsError(f"{out} already holds a run (last.pt). Pass resume=True (--resume) to continue it, "
                              f"or choose another output folder.")
    _seed_everything(cfg)
    device = distributed.setup(pick_device(cfg.device))
    main = distributed.is_main()
    amp = resolve_amp(cfg.amp, device)
    amp_dtype = AMP_DTYPES[amp]
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("amp='fp16' needs a CUDA GPU; on a CPU use amp='bf16' or None")
    model.to(device, memory_format=torch.channels_last if cfg.channels_last else torch.preserve_format)
    loss_fn.to(device)
    ddp = distributed.world()[1] > 1
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                  find_unused_parameters=True) if ddp else model
    if cfg.compile:
        net.compile()
    pin = device.type == "cuda"
    config = dict(config or {}, phases=[p.to_dict() for p in phases], train=asdict(cfg))
    higher = cfg.monitor != "loss"

    progress = {"phase": 0, "epoch": 0, "global_epoch": 0, "step": 0, "best": None, "phase_best": None,
                "bad_epochs": 0, "stopped_early": []}
    ckpt = None
    if resume and last_path.exists():
        ckpt = load_checkpoint(last_path)
        _check_resumable(last_path, ckpt, config, model)
        model.load_state_dict(ckpt["model"])
        progress = ckpt["progress"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        if main:
            print(f"resuming {out} at phase {progress['phase'] + 1}, epoch {progress['epoch'] + 1}, "
                  f"step {progress['step']}")
    log = RunLog(out, enabled=main, fresh=ckpt is None)
    if log.removed:
        print(f"{out}: the run there left no last.pt{' to resume' if resume else ''} (it stopped in its first "
              f"epoch); starting a new run, without its logs ({', '.join(log.removed)} removed)")
    elif resume and ckpt is None and main:
        print(f"{out}: nothing to resume (no last.pt there); starting a new run")
    if ckpt is not None:
        log.truncate(progress["step"])

    def save(path, opt, sched, scaler):
        if main:
            save_checkpoint(path, model=model.state_dict(), optimizer=opt.state_dict(),
                            scheduler=sched.state_dict(), scaler=scaler.state_dict(), config=config,
                            progress=progress, rng={"torch": torch.get_rng_state()})

    def better(value, than):
        return than is None or (value > than if higher else value < than)

    train_sets, val_sets = _by_source(train_set), _by_source(val_set)
    for i, phase in enumerate(phases):
        if i < progress["phase"]:
            continue
        train_set, val_loader = train_sets[phase.data], _loader(val_sets[phase.data], cfg, 0, train=False, pin=pin)
        params = apply_phase(model, phase)
        opt = torch.optim.Adam(params, lr=phase.lr)
        steps_per_epoch = len(_loader(train_set, cfg, 0, train=True))
        if steps_per_epoch == 0:
            raise ValueError(f"the training set has {len(train_set)} samples, fewer than one batch of "
                             f"{cfg.batch_size}: lower batch_size or add data")
        epochs = progress.get("phase_epochs") or phase.epochs  # a time budget's plan, once it has one
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
        scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
        if ckpt is not None and progress["epoch"] > 0:  # resuming inside this phase
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
        ckpt = None

        for epoch in itertools.count(progress["epoch"]):  # until the plan's last epoch (a budget moves it)
            net.train()
            loader = _loader(train_set, cfg, progress["global_epoch"], train=True, pin=pin)
            bar = tqdm(loader, desc=f"{phase.name} {epoch + 1}/{epochs}", disable=not (main and cfg.progress_bar),
                       leave=False, mininterval=1.0)
            t0 = time.perf_counter()
            for batch in bar:
                batch = _to(batch, device, cfg.channels_last)
                try:
                    total, terms, output = train_step(net, loss_fn, batch, opt, scaler=scaler, amp_dtype=amp_dtype,
                                                      grad_clip=cfg.grad_clip, params=params)
                except NonFiniteLossError as e:
                    raise NonFiniteLossError(
                        f"the loss is {e.loss} at step {progress['step'] + 1} (phase {phase.name!r}, epoch "
                        f"{epoch + 1}); terms: {e.terms}. Training stopped; the last good checkpoint is kept at "
                        f"{last_path if last_path.exists() else '(none yet: it failed in the first epoch)'}. "
                        f"Try a lower learning rate, grad_clip, or amp=None.") from None
                sched.step()
                progress["step"] += 1
                step = progress["step"]
                if step == 1:  # the untrained network's loss: the scale for the divergence check
                    progress["first_loss"] = total.item()
                if step % cfg.log_every == 0 or step == 1:
                    log.scalars(step, {"train/loss": total.item(), "lr": sched.get_last_lr()[0],
                                       **{f"train/{k}": float(v) for k, v in terms.items()}})
                    bar.set_postfix(loss=f"{total.item():.4f}")
                if step % cfg.image_every == 0:
                    with torch.no_grad():
                        restored = model.restored(output, batch)
                    log.images(step, "train/masked|restored|target", [batch["masked"], restored, batch["image"]])
            bar.close()

            val = distributed.mean_across_ranks(validate(net, loss_fn, val_loader, device, amp_dtype,
                                                         cfg.channels_last), device)
            progress["epoch"] = epoch + 1
            progress["global_epoch"] += 1
            seconds = time.perf_counter() - t0
            log.scalars(progress["step"], {f"val/{k}": v for k, v in val.items()} | {"epoch_seconds": seconds})
            if phase.minutes:  # the plan follows the pace: the cosine stretches or shrinks to end with the budget
                seconds = distributed.mean_across_ranks({"s": seconds}, device)["s"]  # one plan for all ranks
                progress["phase_seconds"] = progress.get("phase_seconds", 0.0) + seconds
                planned, epochs = epochs, _replan(phase, epoch + 1, progress["phase_seconds"], seconds)
                progress["phase_epochs"] = epochs
                sched.T_max = epochs * steps_per_epoch
                if main and epochs != planned:
                    tqdm.write(f"{phase.name}: {progress['phase_seconds'] / 60:.1f} of {phase.minutes:g} minutes "
                               f"spent, {seconds:.0f} s an epoch: {epochs} epochs in all")
            value = val[cfg.monitor]
            if not all(math.isfinite(v) for v in val.values()):
                raise NonFiniteLossError(f"validation gave {val} after epoch {epoch + 1} of phase {phase.name!r}; "
                                         f"training stopped, the last good checkpoint is kept at {last_path}")
            if better(value, progress["phase_best"]):
                progress["phase_best"], progress["bad_epochs"] = value, 0
            else:
                progress["bad_epochs"] += 1
            # a best measured on other validation data (procedural murals before real ones) is not comparable
            if progress.get("best_data", phase.data) != phase.data or better(value, progress["best"]):
                progress.update(best=value, best_epoch=progress["global_epoch"], best_data=phase.data)
                save(best_path, opt, sched, scaler)
            # divergence: a validation loss 100x the untrained network's (step 1) or the best one before it
            first, best_loss = progress.get("first_loss"), progress.get("best_val_loss")
            scale = min((x for x in (first, best_loss) if x), default=None)
            if main and scale and val["loss"] > 100 * scale and not progress.get("diverged"):
                progress["diverged"] = progress["global_epoch"]
                best_epoch = progress.get("best_epoch")
                warnings.warn(
                    f"the run diverged: validation loss {val['loss']:.3g} after epoch {epoch + 1} of phase "
                    f"{phase.name!r} is {val['loss'] / scale:.3g}x "
                    f"{'the loss at step 1' if scale == first else 'the best validation loss'} ({scale:.3g}). "
                    f"Lower the learning rate (lr {phase.lr:g}). {best_path} keeps the best epoch by {cfg.monitor} "
                    f"(epoch {best_epoch} of the run, {cfg.monitor} {progress['best']:.4g})"
                    f"{', which diverged too' if best_epoch == progress['global_epoch'] else ''}; "
                    f"{last_path} holds the latest weights.", RuntimeWarning, stacklevel=2)
            if progress.get("best_val_loss") is None or val["loss"] < progress["best_val_loss"]:
                progress["best_val_loss"] = val["loss"]
            stop = phase.patience is not None and progress["bad_epochs"] >= phase.patience
            if stop:
                progress["stopped_early"].append(phase.name)
            over = stop or epoch + 1 >= epochs
            if over:  # phase over: the next one starts from the best weights so far
                distributed.barrier()  # rank 0 has written best.pt
                if best_path.exists():
                    model.load_state_dict(load_checkpoint(best_path, map_location=device)["model"])
                progress.update(phase=i + 1, epoch=0, phase_best=None, bad_epochs=0, phase_epochs=None,
                                phase_seconds=0.0)
            save(last_path, opt, sched, scaler)
            log.flush()
            if main:
                tqdm.write(f"{phase.name} epoch {epoch + 1}/{epochs}: "
                           + ", ".join(f"{k} {v:.4f}" for k, v in val.items())
                           + (" (best)" if progress["best"] == value else "")
                           + (f"; stopping early after {phase.patience} epochs without improvement" if stop else ""))
            if over:
                break
    log.close()
    distributed.cleanup()  # every rank waits (rank 0 wrote last.pt), then leaves the process group setup() joined
    return {"best": progress["best"], "monitor": cfg.monitor, "best_checkpoint": best_path,
            "last_checkpoint": last_path, "steps": progress["step"], "epochs": progress["global_epoch"],
            "stopped_early": progress["stopped_early"], "diverged": bool(progress.get("diverged")),
            "history": log.history}
