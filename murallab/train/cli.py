"""``murallab train --config configs/X.yaml [--data DIR] [--out DIR] [--resume] [--device D]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..data import DatasetLayoutError
from .config import build_run, load_config
from .trainer import NonFiniteLossError, fit


def train_command(args) -> int:
    try:
        cfg = load_config(args.config)
        if args.device:
            cfg["train"]["device"] = args.device
        out = Path(args.out or Path("runs") / cfg["name"])
        run = build_run(cfg, args.data)
        result = fit(run["model"], run["loss"], run["train_set"], run["val_set"], run["phases"], run["train"], out,
                     resume=args.resume, config={"name": cfg["name"], "model": cfg["model"], "loss": cfg["loss"],
                                                 "data": cfg["data"]})
    except (FileNotFoundError, FileExistsError, ValueError, DatasetLayoutError, NonFiniteLossError) as e:
        print(f"murallab train: error: {e}", file=sys.stderr)
        return 2
    summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in result.items() if k != "history"}
    print(json.dumps(summary, indent=2))
    return 0
