#!/usr/bin/env python
"""Training throughput: images/s of the kit's own training step in fp32 and bf16, NCHW and channels-last.

    python bench/throughput.py [--config PRESET ...] [--device cuda] [--compile] [--json OUT.json]

For each preset: its network and loss, one step of ``murallab.train.train_step`` (autocast forward and loss,
backward, gradient clipping, Adam) on a batch of the preset's size already on the device (procedural murals with
random-walk holes: data loading is not timed here; ``bench/restoration.py`` times whole runs). Variants:

- ``fp32`` and ``bf16`` (autocast; on a CPU without bf16 hardware it is emulated and slow);
- each also with ``channels_last`` (the weights and the batch stored NHWC, the layout of a GPU's tensor cores);
- with ``--compile``, each also ``torch.compile``d (the first calls compile and are not timed). On a CPU a run takes
  about 9 minutes for ``real_cpu.yaml``'s FFCUNet, nearly all of it compiling (BENCHMARKS.md).

Each variant gets its own copy of the network and optimiser, and the variants run interleaved ``--repeats`` times
(medians), so a drifting machine affects all alike. Goal on a GPU: bf16 at least 1.5x fp32 images/s.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from partial_conv import median_seconds  # noqa: E402

from murallab.data import make_murals, random_walk_masks  # noqa: E402
from murallab.models import build_model  # noqa: E402
from murallab.train import load_config, train_step  # noqa: E402
from murallab.train.config import build_loss  # noqa: E402
from murallab.train.trainer import AMP_DTYPES, _to  # noqa: E402

#: the goal on a GPU: bf16 (channels-last) at least this many times fp32's images/s
BAR_BF16 = 1.5


def batch_for(n: int, size: int, seed: int = 0) -> dict:
    """``n`` procedural murals of ``size`` px with random-walk holes, as the training loop's batch dict."""
    image = make_murals(n, size, seed=seed)
    mask = random_walk_masks(n, size, seed=seed)
    return {"image": image, "mask": mask, "masked": image * mask}


def variants(compile_too: bool) -> list[dict]:
    out = [dict(amp=amp, channels_last=cl, compile=False) for amp in (None, "bf16") for cl in (False, True)]
    return out + [dict(v, compile=True) for v in out] if compile_too else out


def name_of(v: dict) -> str:
    return " ".join([v["amp"] or "fp32"] + [k for k in ("channels_last", "compile") if v[k]])


def bench_config(path: str, device: str, repeats: int, batch: int | None, size: int | None,
                 compile_too: bool) -> dict:
    """``{variant name: {"seconds", "images_per_s", "vs_fp32"}}`` for one preset."""
    cfg = load_config(REPO / path)
    n, px = batch or cfg["train"]["batch_size"], size or cfg["data"]["patch_size"]
    torch.manual_seed(0)
    model, loss = build_model(**cfg["model"]).to(device).train(), build_loss(cfg["loss"]).to(device)
    clip = cfg["train"]["grad_clip"]
    plain = batch_for(n, px)
    steps = {}
    for v in variants(compile_too):
        net = copy.deepcopy(model)
        if v["channels_last"]:
            net.to(memory_format=torch.channels_last)
        if v["compile"]:
            net.compile()
        opt = torch.optim.Adam(net.parameters(), lr=1e-5)
        b = _to(plain, device, v["channels_last"])
        amp = AMP_DTYPES[v["amp"]]

        def step(net=net, opt=opt, b=b, amp=amp):
            train_step(net, loss, b, opt, amp_dtype=amp, grad_clip=clip)
        if v["compile"]:
            step()  # compiling: one untimed call on top of median_seconds' warm-up
        steps[name_of(v)] = step
    seconds = median_seconds(steps, repeats, device)
    base = seconds["fp32"]
    return {k: {"seconds": s, "images_per_s": n / s, "vs_fp32": base / s} for k, s in seconds.items()} | {
        "setting": {"model": cfg["model"], "batch": n, "size": px, "device": device,
                    "threads": torch.get_num_threads(), "repeats": repeats}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--config", nargs="+", help="presets whose network, loss, batch size and patch size are timed "
                    "(default: configs/real_gpu.yaml on CUDA, configs/real_cpu.yaml on a CPU)")
    ap.add_argument("--batch", type=int, help="batch size instead of the preset's")
    ap.add_argument("--size", type=int, help="patch size instead of the preset's")
    ap.add_argument("--repeats", type=int, default=10, help="timed steps per variant (medians)")
    ap.add_argument("--compile", action="store_true", help="also time each variant under torch.compile")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args()
    args.config = args.config or [f"configs/real_{'gpu' if args.device.startswith('cuda') else 'cpu'}.yaml"]
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    results = {}
    for path in args.config:
        r = results[path] = bench_config(path, args.device, args.repeats, args.batch, args.size, args.compile)
        s = r["setting"]
        print(f"{path}: {s['model']['name']}, batch {s['batch']} at {s['size']} px, {s['device']}, "
              f"{s['threads']} threads, median of {s['repeats']} steps")
        for k, v in r.items():
            if k != "setting":
                print(f"  {k:<28} {v['seconds'] * 1000:9.1f} ms/step {v['images_per_s']:9.1f} images/s "
                      f"{v['vs_fp32']:6.2f}x fp32")
        best = max(v["vs_fp32"] for k, v in r.items() if k.startswith("bf16"))
        print(f"  best bf16 variant: {best:.2f}x fp32; goal >= {BAR_BF16}x on a GPU: "
              f"{'met' if best >= BAR_BF16 else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
