"""One training step and one validation pass, for any murallab network (``model(*model.inputs(batch))``)."""

from __future__ import annotations

import torch
from torch.nn.parallel import DistributedDataParallel

from .. import metrics

__all__ = ["NonFiniteLossError", "predict", "train_step", "validate"]


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

    For a blind network also the IoU of its damage map (P(damage) >= its ``threshold``) with the true holes.
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
        if _net(model).task == "blind":
            damaged = out[1].float() >= _net(model).threshold
            values["damage_iou"] = metrics.iou(damaged, mask < 0.5, reduction="none").sum().item()
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        n += b
    model.train()
    return {k: v / max(n, 1) for k, v in sums.items()}
