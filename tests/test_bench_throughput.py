"""bench/throughput.py on a tiny preset: every variant timed, and its figures consistent with each other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_throughput_times_fp32_bf16_and_channels_last(tmp_path):
    out = tmp_path / "throughput.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "throughput.py"), "--config", "configs/tiny_cpu.yaml",
                          "--device", "cpu", "--batch", "2", "--size", "32", "--repeats", "1", "--json", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    r = json.loads(out.read_text())["configs/tiny_cpu.yaml"]
    assert r["setting"] | {"threads": 1} == {"model": {"name": "PConvUNet", "layers": 4, "base": 16}, "batch": 2,
                                             "size": 32, "device": "cpu", "threads": 1, "repeats": 1}
    timed = {k: v for k, v in r.items() if k != "setting"}
    assert set(timed) == {"fp32", "fp32 channels_last", "bf16", "bf16 channels_last"}
    for v in timed.values():
        assert v["seconds"] > 0
        assert v["images_per_s"] == pytest.approx(2 / v["seconds"])
        assert v["vs_fp32"] == pytest.approx(timed["fp32"]["seconds"] / v["seconds"])
    assert "goal >= 1.5x on a GPU" in run.stdout
