"""Run logging: TensorBoard scalars and image grids, plus the same scalars in ``metrics.csv`` and ``metrics.json``."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import torch
from torchvision.utils import make_grid

from .._atomic import write_text


class RunLog:
    """``log.scalars(step, {"train/loss": 0.1, ...})``, ``log.images(step, tag, tensors)``, ``log.close()``.

    Every scalar row also goes to ``metrics.csv`` (long format: step, tag, value) and ``metrics.json``
    (``{tag: [[step, value], ...]}``), so a notebook or a sweep reads the run without TensorBoard. With
    ``enabled=False`` (DDP ranks other than 0) nothing is written.

    With ``fresh=True`` (a new run) the files an earlier run's log left in ``out_dir`` are removed first, so they do
    not mix with the new run's: ``metrics.csv``, ``metrics.json`` and ``tensorboard/events.out.tfevents.*``, and
    nothing else. ``log.removed`` names them.
    """

    FILES = ("metrics.csv", "metrics.json")

    def __init__(self, out_dir, *, enabled: bool = True, tensorboard: bool = True, fresh: bool = False):
        self.out, self.enabled = Path(out_dir), enabled
        self.history: dict[str, list] = {}
        self.tb = None
        self.removed: list[str] = []
        if not enabled:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        if fresh:
            self.removed = self._remove_old_logs()
        if (self.out / "metrics.json").exists():  # a resumed run continues its history
            self.history = json.loads((self.out / "metrics.json").read_text())
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(self.out / "tensorboard")

    def _remove_old_logs(self) -> list[str]:
        stale = [self.out / name for name in self.FILES]
        stale += sorted((self.out / "tensorboard").glob("events.out.tfevents.*"))
        removed = []
        for path in stale:
            if path.is_file():
                path.unlink()
                removed.append(str(path.relative_to(self.out)))
        return removed

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        new = not (self.out / "metrics.csv").exists()
        with open(self.out / "metrics.csv", "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step", "tag", "value"])
            for tag, v in values.items():
                v = float(v)
                w.writerow([step, tag, v])
                self.history.setdefault(tag, []).append([step, v if math.isfinite(v) else None])
                if self.tb is not None:
                    self.tb.add_scalar(tag, v, step)

    def truncate(self, step: int) -> None:
        """Forget everything logged after ``step``: a resumed run redoes those steps."""
        if not self.enabled:
            return
        self.history = {t: [sv for sv in rows if sv[0] <= step] for t, rows in self.history.items()}
        path = self.out / "metrics.csv"
        if path.exists():
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            kept = rows[:1] + [r for r in rows[1:] if int(r[0]) <= step]
            with open(path, "w", newline="") as f:
                csv.writer(f).writerows(kept)
        self.flush()

    def images(self, step: int, tag: str, rows: list[torch.Tensor]) -> None:
        """One grid: each tensor in ``rows`` is a ``(B, 3, H, W)`` batch in [0, 1], shown as a row."""
        if self.enabled and self.tb is not None:
            n = min(len(r) for r in rows)
            grid = make_grid(torch.cat([r[:n].detach().float().cpu().clamp(0, 1) for r in rows]), nrow=n)
            self.tb.add_image(tag, grid, step)

    def flush(self) -> None:
        if self.enabled:
            write_text(self.out / "metrics.json", json.dumps(self.history))
            if self.tb is not None:
                self.tb.flush()

    def close(self) -> None:
        self.flush()
        if self.tb is not None:
            self.tb.close()
