"""`murallab sweep`: grids, one folder per run, results.csv, resumability, and failed runs that lose nothing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from murallab import cli
from murallab.sweep import collect, load_grid

REPO = Path(__file__).resolve().parents[1]


def write_notebook(path: Path, parameters: str, body: str) -> Path:
    """A two-cell notebook for the murallab kernel: a ``parameters`` cell, then ``body``."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                                         nbformat.v4.new_code_cell(body)])
    nb.metadata = {"kernelspec": {"name": "murallab", "display_name": "Python (murallab)", "language": "python"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def notebook(tmp_path):
    """A tiny notebook: y = 2x into metrics.json; x == 3 fails; every execution is counted in a log file."""
    return write_notebook(
        tmp_path / "nbs" / "tiny.ipynb", "x = 1\nscale = 2\noutput_dir = None",
        "import json, pathlib\n"
        f"open({str(tmp_path / 'executions.log')!r}, 'a').write(f'{{x}}\\n')\n"
        "assert x != 3, 'x = 3 is the broken point'\n"
        "import os\n"
        "pathlib.Path(output_dir, 'metrics.json').write_text(json.dumps(\n"
        "    {'y': scale * x, 'cwd': str(pathlib.Path.cwd()), 'threads': os.environ.get('OMP_NUM_THREADS')}))")


def executions(tmp_path) -> list[int]:
    return [int(v) for v in (tmp_path / "executions.log").read_text().split()]


def test_grid_forms(tmp_path):
    g = tmp_path / "g.yaml"
    g.write_text("fixed: {scale: 3}\ngrid: {x: [1, 2], seed: [0, 1]}\n")
    runs = load_grid(g)
    assert len(runs) == 4 and all(p["scale"] == 3 for _, p in runs)
    assert {n for n, _ in runs} == {"x-1_seed-0", "x-1_seed-1", "x-2_seed-0", "x-2_seed-1"}
    g.write_text("runs:\n  - {name: a, x: 1}\n  - {name: b, x: 2}\n")
    assert load_grid(g) == [("a", {"x": 1}), ("b", {"x": 2})]
    g.write_text("grid: {x: 1}\n")
    with pytest.raises(ValueError, match="non-empty list"):
        load_grid(g)
    g.write_text("runs:\n  - {name: a}\n  - {name: a}\n")
    with pytest.raises(ValueError, match="unique"):
        load_grid(g)


def test_sweep_runs_collects_and_resumes(notebook, tmp_path, capsys, monkeypatch):
    chdirs, here = [], os.getcwd()  # the process-wide cwd must stay put: worker threads share it
    monkeypatch.setattr("os.chdir", lambda path: chdirs.append(str(path)))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # as in a shell that never set it
    grid = tmp_path / "grid.yaml"
    grid.write_text("fixed: {scale: 10}\ngrid: {x: [1, 2, 3]}\n")
    out = tmp_path / "sweep"
    args = ["sweep", str(notebook), "--grid", str(grid), "--out", str(out), "--jobs", "2"]
    assert cli.main(args) == 1  # one run failed
    assert "x-3 failed" in capsys.readouterr().err
    rows = {r["run"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert rows["x-1"]["status"] == "done" and float(rows["x-1"]["metric.y"]) == 10
    assert float(rows["x-2"]["metric.y"]) == 20 and rows["x-2"]["param.scale"] == "10"
    assert rows["x-3"]["status"] == "failed" and "broken point" in (out / "x-3" / "error.txt").read_text()
    for run in ("x-1", "x-2"):  # every kernel starts in the notebook's folder
        assert json.loads((out / run / "metrics.json").read_text())["cwd"] == str(notebook.parent)
    cores = len(os.sched_getaffinity(0))  # two kernels at once share the cores instead of each taking all of them
    assert json.loads((out / "x-1" / "metrics.json").read_text())["threads"] == str(max(1, cores // 2))
    assert "OMP_NUM_THREADS" not in os.environ  # and the sweep leaves this process's environment as it was
    assert set(chdirs) <= {here}  # papermill's file handler "changes" to the cwd it already has; nothing else
    assert (out / "x-2" / "notebook.ipynb").exists() and (out / "summary.png").exists()
    assert sorted(executions(tmp_path)) == [1, 2, 3]

    # Resume: finished runs are skipped, the failed one runs again (and still fails), results are kept.
    assert cli.main(args) == 1
    assert sorted(executions(tmp_path)) == [1, 2, 3, 3]
    rows = {r["run"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert float(rows["x-1"]["metric.y"]) == 10 and rows["x-3"]["status"] == "failed"

    # Changed parameters make a finished run stale: it runs again.
    grid.write_text("fixed: {scale: 100}\ngrid: {x: [1]}\n")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # a thread count the user chose is kept
    assert cli.main(args) == 0
    assert executions(tmp_path)[-1] == 1
    assert json.loads((out / "x-1" / "metrics.json").read_text())["threads"] == "3"
    assert float(next(csv.DictReader(open(out / "results.csv")))["metric.y"]) == 100


def test_relative_paths(notebook, tmp_path, monkeypatch):
    """Relative --grid and --out work although papermill changes the working directory while it runs."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grid.yaml").write_text("grid: {x: [1]}\n")
    assert cli.main(["sweep", "nbs/tiny.ipynb", "--grid", "grid.yaml", "--out", "out/sweep"]) == 0
    assert (tmp_path / "out" / "sweep" / "results.csv").exists()


def test_sweep_errors(notebook, tmp_path, capsys):
    assert cli.main(["sweep", str(tmp_path / "nope.ipynb"), "--grid", str(tmp_path / "g.yaml"), "--out",
                     str(tmp_path / "o")]) == 2
    assert "no notebook" in capsys.readouterr().err
    assert cli.main(["sweep", str(notebook), "--grid", str(tmp_path / "g.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "no grid file" in capsys.readouterr().err


def test_example_grid_is_valid():
    runs = load_grid(REPO / "configs" / "sweeps" / "loss_ablation.yaml")
    assert [n for n, _ in runs] == ["pconv", "pconv_ssim", "pconv_ssim_edge"]
    assert all((REPO / "notebooks" / p["preset"]).resolve().is_file() for _, p in runs)


def test_broken_files_fail_that_run_and_a_rerun_repairs_it(notebook, tmp_path):
    """An unreadable metrics.json or status.json (a notebook's bug, a run cut off mid-write) makes that run
    "failed" in results.csv, with the file named; the others are kept, and the next sweep runs it again."""
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid: {x: [1, 2, 4]}\n")
    out = tmp_path / "sweep"
    args = ["sweep", str(notebook), "--grid", str(grid), "--out", str(out)]
    assert cli.main(args) == 0
    (out / "x-1" / "status.json").write_text("")
    (out / "x-2" / "metrics.json").write_text('{"y": 4')
    rows = {r["run"]: r for r in collect(out, load_grid(grid))}
    assert rows["x-1"]["status"] == "failed" and "status.json is not valid JSON" in rows["x-1"]["error"]
    assert rows["x-2"]["status"] == "failed" and "metrics.json is not valid JSON" in rows["x-2"]["error"]
    assert rows["x-4"]["status"] == "done" and rows["x-4"]["metric.y"] == 8
    assert cli.main(args) == 0
    assert sorted(executions(tmp_path)) == [1, 1, 2, 2, 4]  # only the broken runs ran again
    rows = {r["run"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert [float(rows[n]["metric.y"]) for n in ("x-1", "x-2", "x-4")] == [2, 4, 8]


def _sweep_process(args: list[str], *, prelude: str = "") -> subprocess.Popen:
    """``murallab sweep ARGS`` in a process of its own session, as a terminal runs it; SIGINT raises
    KeyboardInterrupt there even when this test runs with SIGINT ignored (a background job in a script)."""
    code = ("import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n" + prelude +
            "from murallab import cli\nsys.exit(cli.main(['sweep'] + sys.argv[1:]))")
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")  # a zombie nobody reaps (no init in a container) has ended too
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def test_ctrl_c_stops_the_kernel_and_leaves_consistent_results(tmp_path):
    """Ctrl-C in the middle of a run: the kernel stops at once (its cell would sleep 10 minutes), the queued run is
    not started, results.csv lists the finished run as done and the stopped one as interrupted, and the command
    says so in one line and exits 130, without a traceback."""
    write_notebook(tmp_path / "sleepy.ipynb", "x = 1\noutput_dir = None",
                   "import json, os, pathlib, time\n"
                   f"open({str(tmp_path / 'executions.log')!r}, 'a').write(f'{{x}} {{os.getpid()}}\\n')\n"
                   "if x == 2:\n    time.sleep(600)\n"
                   "pathlib.Path(output_dir, 'metrics.json').write_text(json.dumps({'y': 2 * x}))")
    (tmp_path / "grid.yaml").write_text("grid: {x: [1, 2, 3]}\n")
    out = tmp_path / "sweep"
    log = tmp_path / "executions.log"
    proc = _sweep_process([str(tmp_path / "sleepy.ipynb"), "--grid", str(tmp_path / "grid.yaml"), "--out", str(out)])
    kernel_pid = None
    try:
        deadline = time.monotonic() + 180  # generous: a busy 2-core machine starts Python and kernels slowly
        while kernel_pid is None and time.monotonic() < deadline and proc.poll() is None:
            lines = log.read_text().split("\n")[:-1] if log.exists() else []  # whole lines only
            kernel_pid = next((int(line.split()[1]) for line in lines if line.startswith("2 ")), None)
            time.sleep(0.2)
        assert kernel_pid is not None, f"run x-2 never started (the sweep's exit status: {proc.poll()})"
        assert json.loads((out / "x-2" / "status.json").read_text())["status"] == "running"
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        _, err = proc.communicate(timeout=60)  # far less than the 10-minute cell: the kernel is stopped at once
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        if kernel_pid and _alive(kernel_pid):
            os.kill(kernel_pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert took < 45, took
    assert "Traceback" not in err, err
    message = [line for line in err.splitlines() if line.startswith("murallab sweep:")]
    assert len(message) == 1 and message[0].startswith("murallab sweep: interrupted: stopped x-2; 1 of 3 runs done")
    rows = {r["run"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert rows["x-1"]["status"] == "done" and float(rows["x-1"]["metric.y"]) == 2
    assert rows["x-2"]["status"] == "interrupted" and rows["x-2"]["metric.y"] == ""
    assert rows["x-3"]["status"] == "missing" and not (out / "x-3").exists()  # the queued run never started
    assert json.loads((out / "x-2" / "status.json").read_text())["status"] == "interrupted"
    assert (out / "x-2" / "error.txt").read_text().startswith("interrupted (Ctrl-C)")
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["1", "2"]
    for _ in range(50):  # the kernel was shut down, not left running
        if not _alive(kernel_pid):
            break
        time.sleep(0.2)
    assert not _alive(kernel_pid)


def test_sweep_without_papermill_names_the_extra(notebook, tmp_path):
    """The library does not depend on papermill (it comes with the course extra): one line that says so, exit 2."""
    (tmp_path / "grid.yaml").write_text("grid: {x: [1]}\n")
    proc = _sweep_process([str(notebook), "--grid", str(tmp_path / "grid.yaml"), "--out", str(tmp_path / "o")],
                          prelude="sys.modules['papermill'] = None  # installed without the course extra\n")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert [line for line in err.splitlines() if line.startswith("murallab")] == [
        'murallab sweep: error: the sweep runner needs the course tools: pip install "murallab[course]"']
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_grid_numbers_as_people_write_them(tmp_path):
    """`lr: [1e-3, 1e-4]` reaches the notebooks as floats (PyYAML alone reads them as strings); a grid with a tab is
    a one-line error naming the file and the line."""
    g = tmp_path / "grid.yaml"
    g.write_text("grid: {lr: [1e-3, 1e-4]}\n")
    assert [p["lr"] for _, p in load_grid(g)] == [0.001, 0.0001]
    g.write_text("grid:\n\tlr: [1]\n")
    with pytest.raises(ValueError, match=r"grid\.yaml, line 2.*tabs"):
        load_grid(g)
