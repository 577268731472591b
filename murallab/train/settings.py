"""The settings every phase of a run shares (``TrainConfig``), and the autocast dtype they name."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["TrainConfig", "AMP_DTYPES", "resolve_amp"]


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
