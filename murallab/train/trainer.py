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

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

from .. import metrics
from .._device import device as pick_device
from ..data.masks import composite as _composite
from ..nn import DualDecoderUNet
from . import distributed
from .checkpoint import load_checkpoint, save_checkpoint
from .log import RunLog
from .phases import Phase, apply_phase


@dataclass
class TrainConfig:
    """Settings shared by all phases.

    amp: None (fp32), "bf16" or "fp16" (CUDA only, with a GradScaler). Off by default: on CPUs without bf16
        hardware, bf16 autocast measured 3.5x slower than fp32.
    monitor: the validation metric for early stopping and ``best.pt`` (higher is better): "psnr", "ssim" or
        "psnr_hole"; or "loss" (lower is better).
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

    def __post_init__(self):
        if self.amp not in (None, "bf16", "fp16"):
            raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {self.amp!r}")
        if self.monitor not in ("psnr", "ssim", "psnr_hole", "loss"):
            raise ValueError(f"monitor must be psnr, ssim, psnr_hole or loss, got {self.monitor!r}")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or inf; training stopped and the last good checkpoint was kept."""


def predict(model, batch: dict):
    """Run ``model`` on a batch: blind networks see the corrupted image, the others the masked image and the mask."""
    net = model.module if isinstance(model, DistributedDataParallel) else model
    if isinstance(net, DualDecoderUNet):
        return model(batch.get("corrupted", batch["masked"]))
    return model(batch["masked"], batch["mask"])


def composite(out, batch: dict, threshold: float = 0.1) -> torch.Tensor:
    """The restored image in [0, 1]: known pixels from the input. A blind network uses its own damage map."""
    if isinstance(out, tuple):
        image, damage = out
        return DualDecoderUNet.composite(batch.get("corrupted", batch["masked"]), image, damage, threshold)
    return _composite(batch["image"], batch["mask"], out.clamp(0, 1))


def _to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


@torch.no_grad()
def validate(model, loss_fn, loader, device, amp_dtype=None) -> dict[str, float]:
    """Mean loss, PSNR, SSIM and hole-only PSNR of the composite over ``loader`` (per image, then averaged).

    For a blind network also the IoU of its damage map (> 0.5) with the true holes.
    """
    model.eval()
    sums, n = {}, 0
    for batch in loader:
        batch = _to(batch, device)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            out = predict(model, batch)
            total, _ = loss_fn(out, batch["image"], batch["mask"])
        out = tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()
        restored, image, mask = composite(out, batch), batch["image"], batch["mask"]
        b = len(image)
        values = {"loss": total.item() * b,
                  "psnr": metrics.psnr(restored, image, reduction="none").clamp(max=100).sum().item(),
                  "ssim": metrics.ssim(restored, image, reduction="none").sum().item(),
                  "psnr_hole": metrics.psnr(restored, image, mask, reduction="none").clamp(max=100).sum().item()}
        if isinstance(out, tuple):
            pred_hole, hole = out[1] > 0.5, mask < 0.5
            inter, union = (pred_hole & hole).sum((1, 2, 3)), (pred_hole | hole).sum((1, 2, 3))
            values["damage_iou"] = (inter / union.clamp(min=1)).sum().item()
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        n += b
    model.train()
    return {k: v / max(n, 1) for k, v in sums.items()}


def _seed_everything(cfg: TrainConfig) -> None:
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def _loader(dataset, cfg: TrainConfig, epoch: int, *, train: bool) -> DataLoader:
    """Shuffled batches whose order depends only on (seed, epoch); sharded by rank under torchrun."""
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    if hasattr(base, "set_epoch"):  # fresh masks (and painted damage) every epoch
        base.set_epoch(epoch if train else 0)
    rank, size = distributed.world()
    if size > 1:
        sampler = DistributedSampler(dataset, num_replicas=size, rank=rank, shuffle=train, seed=cfg.seed,
                                     drop_last=train)
        sampler.set_epoch(epoch)
        return DataLoader(dataset, cfg.batch_size, sampler=sampler, drop_last=train, num_workers=cfg.num_workers)
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    return DataLoader(dataset, cfg.batch_size, shuffle=train, generator=g, drop_last=train,
                      num_workers=cfg.num_workers)


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
        resume: continue from ``out_dir/last.pt``. Without it an existing run in ``out_dir`` is an error.
    Returns:
        ``{"best": value, "monitor": name, "best_checkpoint", "last_checkpoint", "steps", "epochs",
        "stopped_early": [phase names], "history": {tag: [[step, value], ...]}}``
    """
    out = Path(out_dir)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if last_path.exists() and not resume:
        raise FileExistsError(f"{out} already holds a run (last.pt). Pass resume=True (--resume) to continue it, "
                              f"or choose another output folder.")
    _seed_everything(cfg)
    device = distributed.setup(pick_device(cfg.device))
    main = distributed.is_main()
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}[cfg.amp]
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ValueError("amp='fp16' needs a CUDA GPU; on a CPU use amp='bf16' or None")
    model.to(device)
    loss_fn.to(device)
    ddp = distributed.world()[1] > 1
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                  find_unused_parameters=True) if ddp else model
    config = dict(config or {}, phases=[p.to_dict() for p in phases], train=asdict(cfg))
    higher = cfg.monitor != "loss"

    progress = {"phase": 0, "epoch": 0, "global_epoch": 0, "step": 0, "best": None, "phase_best": None,
                "bad_epochs": 0, "stopped_early": []}
    ckpt = None
    if resume and last_path.exists():
        ckpt = load_checkpoint(last_path)
        model.load_state_dict(ckpt["model"])
        progress = ckpt["progress"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        if main:
            print(f"resuming {out} at phase {progress['phase'] + 1}, epoch {progress['epoch'] + 1}, "
                  f"step {progress['step']}")
    log = RunLog(out, enabled=main)
    if ckpt is not None:
        log.truncate(progress["step"])

    def save(path, opt, sched, scaler):
        if main:
            save_checkpoint(path, model=model.state_dict(), optimizer=opt.state_dict(),
                            scheduler=sched.state_dict(), scaler=scaler.state_dict(), config=config,
                            progress=progress, rng={"torch": torch.get_rng_state()})

    def better(value, than):
        return than is None or (value > than if higher else value < than)

    train_sets = train_set if isinstance(train_set, dict) else {"main": train_set, "procedural": train_set}
    val_sets = val_set if isinstance(val_set, dict) else {"main": val_set, "procedural": val_set}
    for i, phase in enumerate(phases):
        if i < progress["phase"]:
            continue
        train_set, val_loader = train_sets[phase.data], _loader(val_sets[phase.data], cfg, 0, train=False)
        params = apply_phase(model, phase)
        opt = torch.optim.Adam(params, lr=phase.lr)
        steps_per_epoch = len(_loader(train_set, cfg, 0, train=True))
        if steps_per_epoch == 0:
            raise ValueError(f"the training set has {len(train_set)} samples, fewer than one batch of "
                             f"{cfg.batch_size}: lower batch_size or add data")
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=phase.epochs * steps_per_epoch)
        scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
        if ckpt is not None and progress["epoch"] > 0:  # resuming inside this phase
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
        ckpt = None

        for epoch in range(progress["epoch"], phase.epochs):
            net.train()
            loader = _loader(train_set, cfg, progress["global_epoch"], train=True)
            bar = tqdm(loader, desc=f"{phase.name} {epoch + 1}/{phase.epochs}", disable=not (main and cfg.progress_bar),
                       leave=False, mininterval=1.0)
            t0 = time.perf_counter()
            for batch in bar:
                batch = _to(batch, device)
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    output = predict(net, batch)
                    total, terms = loss_fn(output, batch["image"], batch["mask"])
                if not torch.isfinite(total):
                    shown = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
                    total = total.detach()
                    raise NonFiniteLossError(
                        f"the loss is {total.item()} at step {progress['step'] + 1} (phase {phase.name!r}, epoch "
                        f"{epoch + 1}); terms: {shown}. Training stopped; the last good checkpoint is kept at "
                        f"{last_path if last_path.exists() else '(none yet: it failed in the first epoch)'}. "
                        f"Try a lower learning rate, grad_clip, or amp=None.")
                opt.zero_grad(set_to_none=True)
                scaler.scale(total).backward()
                if cfg.grad_clip:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
                sched.step()
                progress["step"] += 1
                step = progress["step"]
                if step % cfg.log_every == 0 or step == 1:
                    log.scalars(step, {"train/loss": total.item(), "lr": sched.get_last_lr()[0],
                                       **{f"train/{k}": float(v) for k, v in terms.items()}})
                    bar.set_postfix(loss=f"{total.item():.4f}")
                if step % cfg.image_every == 0:
                    with torch.no_grad():
                        restored = composite(tuple(o.float() for o in output) if isinstance(output, tuple)
                                             else output.float(), batch)
                    log.images(step, "train/masked|restored|target", [batch["masked"], restored, batch["image"]])
            bar.close()

            val = distributed.mean_across_ranks(validate(net, loss_fn, val_loader, device, amp_dtype), device)
            progress["epoch"] = epoch + 1
            progress["global_epoch"] += 1
            log.scalars(progress["step"], {f"val/{k}": v for k, v in val.items()}
                        | {"epoch_seconds": time.perf_counter() - t0})
            value = val[cfg.monitor]
            if not all(math.isfinite(v) for v in val.values()):
                raise NonFiniteLossError(f"validation gave {val} after epoch {epoch + 1} of phase {phase.name!r}; "
                                         f"training stopped, the last good checkpoint is kept at {last_path}")
            if better(value, progress["phase_best"]):
                progress["phase_best"], progress["bad_epochs"] = value, 0
            else:
                progress["bad_epochs"] += 1
            if better(value, progress["best"]):
                progress["best"] = value
                save(best_path, opt, sched, scaler)
            stop = phase.patience is not None and progress["bad_epochs"] >= phase.patience
            if stop:
                progress["stopped_early"].append(phase.name)
            if stop or epoch + 1 == phase.epochs:  # phase over: the next one starts from the best weights so far
                distributed.barrier()  # rank 0 has written best.pt
                if best_path.exists():
                    model.load_state_dict(load_checkpoint(best_path, map_location=device)["model"])
                progress.update(phase=i + 1, epoch=0, phase_best=None, bad_epochs=0)
            save(last_path, opt, sched, scaler)
            log.flush()
            if main:
                tqdm.write(f"{phase.name} epoch {epoch + 1}/{phase.epochs}: "
                           + ", ".join(f"{k} {v:.4f}" for k, v in val.items())
                           + (" (best)" if progress["best"] == value else "")
                           + (f"; stopping early after {phase.patience} epochs without improvement" if stop else ""))
            if stop:
                break
    log.close()
    distributed.barrier()
    return {"best": progress["best"], "monitor": cfg.monitor, "best_checkpoint": best_path,
            "last_checkpoint": last_path, "steps": progress["step"], "epochs": progress["global_epoch"],
            "stopped_early": progress["stopped_early"], "history": log.history}
