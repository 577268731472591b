"""Atomic writes: a reader in another thread sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from murallab._atomic import atomic_path, write_text


def _torn_reads(write, path: Path, n: int = 300) -> int:
    """Write ``path`` ``n`` times in a thread while this one parses it; how many reads saw a partial file."""
    payloads = [json.dumps({"status": "running", "pad": "x" * 200_000 * (i % 2 + 1)}) for i in range(2)]
    write(path, payloads[0])
    done, torn = threading.Event(), 0

    def writer():
        for i in range(n):
            write(path, payloads[i % 2])
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    while not done.is_set():
        try:
            json.loads(path.read_text())
        except json.JSONDecodeError:
            torn += 1
    t.join()
    return torn


def test_a_concurrent_reader_never_sees_a_partial_file(tmp_path):
    assert _torn_reads(write_text, tmp_path / "status.json") == 0
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary file left behind


def test_the_race_is_real_for_a_plain_write(tmp_path):
    """The control: ``Path.write_text`` truncates, then writes, so the same reader does see torn files."""
    assert _torn_reads(lambda p, s: p.write_text(s), tmp_path / "status.json") > 0


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "deep" / "a.txt"
    write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old" and sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]
