"""Experiment sweeps: ``murallab sweep NOTEBOOK --grid GRID.yaml --out DIR [--jobs N] [--kernel NAME]``.

Runs a notebook once per point of a parameter grid with papermill, each in its own folder, and collects every
run's ``metrics.json`` into ``DIR/results.csv`` and ``DIR/summary.png``. A grid file holds either a cartesian
product or an explicit list of runs, plus parameters shared by all of them:

    fixed: {epochs: [2, 1, 1]}            # passed to every run
    grid: {lr: [1.0e-3, 1.0e-4], seed: [0, 1]}          # 4 runs: every combination
    # or
    runs:                                 # one run each; "name" names its folder
      - {name: pconv, loss_weights: {structural: 0.0}}
      - {name: pconv_ssim, loss_weights: {structural: 5.0}}

Each run writes ``DIR/<name>/notebook.ipynb`` (the executed copy), ``params.json``, the notebook's own outputs
(its ``output_dir`` is the run folder) and ``status.json``. The sweep is resumable: a rerun skips the runs whose
status is "done" with the same parameters, and re-runs failed or interrupted ones. A failed run leaves its error
in ``DIR/<name>/error.txt`` and in ``results.csv``; the other runs go on.

Ctrl-C interrupts the running notebooks (their kernels get SIGINT, then SIGKILL if they are still running 5 s later
or at a second Ctrl-C), cancels the runs not yet started, and leaves ``results.csv`` saying which runs are done and
which were interrupted; a rerun of the same command resumes. The runner needs papermill, which comes with the
``course`` extra (``pip install "murallab[course]"``), not with the library itself.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from ._atomic import atomic_path, write_text
from ._yaml import load_yaml
from .params import check_parameters


COURSE_TOOLS = 'the sweep runner needs the course tools: pip install "murallab[course]"'


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a sweep; ``rows`` are the results written to ``results.csv`` when it stopped."""

    def __init__(self, message: str, rows: list[dict]):
        super().__init__(message)
        self.rows = rows


def _require_course_tools() -> None:
    """papermill is not a dependency of the library (it comes with the ``course`` extra): say so in one line."""
    try:
        import papermill  # noqa: F401
    except ImportError:
        raise ModuleNotFoundError(COURSE_TOOLS, name="papermill") from None


def load_grid(path) -> list[tuple[str, dict]]:
    """``[(run name, parameters), ...]`` from a grid file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no grid file at {path}")
    spec = load_yaml(path) or {}
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping with 'grid' or 'runs', got a {type(spec).__name__}")
    unknown = set(spec) - {"fixed", "grid", "runs", "description"}
    if unknown or ("grid" in spec) == ("runs" in spec):
        raise ValueError(f"{path}: expected 'grid' (a dict of lists) or 'runs' (a list of dicts), plus optional "
                         f"'fixed'; got sections {sorted(spec)}")
    fixed = spec.get("fixed") or {}
    if "grid" in spec:
        grid = spec["grid"]
        if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
            raise ValueError(f"{path}: 'grid' must map each parameter to a non-empty list of values")
        points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
        named = [("_".join(f"{k}-{v}" for k, v in p.items()), p) for p in points]
    else:
        if not isinstance(spec["runs"], list) or not all(isinstance(r, dict) for r in spec["runs"]):
            raise ValueError(f"{path}: 'runs' must be a list of dicts")
        named = [(str(r.get("name", i)), {k: v for k, v in r.items() if k != "name"})
                 for i, r in enumerate(spec["runs"])]
    runs = [(re.sub(r"[^\w.=-]+", "_", name)[:80], {**fixed, **p}) for name, p in named]
    names = [n for n, _ in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: run names must be unique, got {names}")
    return runs


class _Kernel:
    """The kernel of one run in progress, as far as Ctrl-C needs it: its manager and whether a cell has started."""

    def __init__(self):
        self.manager = None  # a jupyter_client kernel manager, set when nbclient creates it
        self.executing = False  # True once the kernel runs cells (then SIGINT interrupts a cell, not its start-up)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the kernel's process group (its own session: the terminal's Ctrl-C never reaches it)."""
        provisioner = getattr(self.manager, "provisioner", None)
        pid = getattr(provisioner, "pgid", None) or getattr(provisioner, "pid", None)
        try:
            if pid and hasattr(os, "killpg"):
                os.killpg(pid, signum)
            elif getattr(provisioner, "process", None) is not None and signum != signal.SIGINT:
                provisioner.process.kill()  # Windows has no process groups to signal
        except (ProcessLookupError, PermissionError):
            pass  # it has already ended


class _Kernels:
    """The kernels of the runs in progress, so that Ctrl-C can stop them.

    papermill runs each notebook in a worker thread, where nbclient cannot install its own SIGINT handler, and
    jupyter_client starts each kernel in a session of its own, so Ctrl-C reaches neither: without this, the sweep
    waited for every running notebook to end (and then ran the queued ones) before it stopped.
    """

    GRACE = 5.0  # seconds an interrupted kernel gets to stop at its cell's KeyboardInterrupt before SIGKILL

    def __init__(self):
        self._lock = threading.Lock()
        self._live: dict[str, _Kernel] = {}
        self.stopping = threading.Event()

    def register(self, name: str) -> _Kernel | None:
        """A record for run ``name``'s kernel, or ``None`` when Ctrl-C came before the run started."""
        with self._lock:
            if self.stopping.is_set():
                return None
            record = self._live[name] = _Kernel()
            return record

    def forget(self, name: str) -> None:
        with self._lock:
            self._live.pop(name, None)

    @staticmethod
    def engine_kwargs(record: _Kernel) -> dict:
        """papermill engine arguments that report a run's kernel to ``record``; nbclient still owns the kernel and
        shuts it down as usual."""
        from jupyter_client import AsyncKernelManager

        class TrackedKernelManager(AsyncKernelManager):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                record.manager = self

        def on_cell_start(**_):
            record.executing = True

        return {"kernel_manager_class": TrackedKernelManager, "on_cell_start": on_cell_start}

    def stop(self, futures) -> None:
        """Interrupt the running kernels (SIGINT: the cell raises KeyboardInterrupt, nbclient then shuts the kernel
        down) and wait for their runs to end; SIGKILL after ``GRACE`` seconds or at a second Ctrl-C."""
        with self._lock:
            self.stopping.set()  # from now on no run registers, so no new kernel starts
        deadline = time.monotonic() + self.GRACE
        force, presses = False, 1
        while True:
            try:
                with self._lock:
                    live = list(self._live.values())
                if not live and all(f.done() for f in futures):
                    return
                force = force or time.monotonic() > deadline
                for k in live:
                    # SIGINT again on every pass: ipykernel ignores it between cells, so one sent as a cell ends
                    # would be lost and the next cell would run
                    if force:
                        k.signal(getattr(signal, "SIGKILL", signal.SIGTERM))
                    elif k.executing:
                        k.signal(signal.SIGINT)
                wait(futures, timeout=0.5)
            except KeyboardInterrupt:  # a second Ctrl-C kills the kernels at once, a third stops waiting for them
                force, presses = True, presses + 1
                if presses >= 3:
                    return


def _run_one(notebook: Path, folder: Path, params: dict, kernel: str, timeout: int,
             kernels: _Kernels | None = None, name: str = "") -> dict:
    """Execute one point (``notebook`` and ``folder`` absolute); returns its status dict (also in ``status.json``).
    With ``kernels``, its kernel can be interrupted by ``kernels.stop``; a run it stops is "interrupted"."""
    import papermill as pm

    kernels = kernels or _Kernels()
    record = kernels.register(name)
    if record is None:  # Ctrl-C came before this run started: leave its folder as it was
        return {"status": "not started", "error": "not started"}
    try:
        return _execute(pm, notebook, folder, params, kernel, timeout, kernels, record)
    finally:
        kernels.forget(name)


def _execute(pm, notebook: Path, folder: Path, params: dict, kernel: str, timeout: int, kernels: _Kernels,
             record: _Kernel) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "params.json", json.dumps(params, indent=2, default=str))
    (folder / "error.txt").unlink(missing_ok=True)
    status = {"status": "running", "params": params, "started": time.time()}
    write_text(folder / "status.json", json.dumps(status, default=str))
    t0 = time.perf_counter()
    try:
        # The kernel starts in the notebook's folder. Not papermill's ``cwd=``: that calls ``os.chdir``, which is
        # process-wide, so with ``--jobs 2`` one thread's chdir back moves the other's kernel and relative paths.
        pm.execute_notebook(str(notebook), str(folder / "notebook.ipynb"),
                            parameters={**params, "output_dir": str(folder)}, kernel_name=kernel,
                            resources={"metadata": {"path": str(notebook.parent)}},
                            progress_bar=False, execution_timeout=timeout, **kernels.engine_kwargs(record))
        status.update(status="done")
    except Exception as e:  # noqa: BLE001 - any failure of one run is recorded, the sweep goes on
        lines = [f"{type(e).__name__}: {getattr(e, 'ename', '')} {getattr(e, 'evalue', e)}".strip()]
        if kernels.stopping.is_set():  # the cell's KeyboardInterrupt, or the kernel killed after it
            lines.insert(0, "interrupted (Ctrl-C)")
        if getattr(e, "cell_index", None) is not None:
            lines.append(f"in cell {e.cell_index} of {folder / 'notebook.ipynb'}:\n{getattr(e, 'source', '')}")
        (folder / "error.txt").write_text("\n\n".join(lines) + "\n")
        status.update(status="interrupted" if kernels.stopping.is_set() else "failed", error=lines[0])
    status["seconds"] = time.perf_counter() - t0
    write_text(folder / "status.json", json.dumps(status, indent=2, default=str))
    return status


def _read_json(path: Path):
    """The JSON in ``path``; ``None`` if there is no file, ``ValueError`` (naming it) if it is not valid JSON."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None


def _flat(d: dict, prefix: str = "") -> dict:
    """Nested dicts to dotted keys; lists and other values kept as JSON text."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v)
    return out


def _load_run(folder: Path, params: dict) -> tuple[dict, dict]:
    """``(status, metrics)`` of one run folder; an unreadable file makes the run "failed", with the reason, and a
    run finished with other parameters than ``params`` is "stale" (a grid changed since; the next sweep reruns it)."""
    status, metrics = {}, {}
    try:
        status = _read_json(folder / "status.json") or {}
        if status.get("status") == "done" and status.get("params") != json.loads(json.dumps(params, default=str)):
            status = {**status, "status": "stale", "error": "finished with other parameters"}
        if status.get("status") == "done":
            metrics = _read_json(folder / "metrics.json") or {}
    except ValueError as e:
        status = {**status, "status": "failed", "error": str(e)}
    return status, metrics


def collect(out_dir, runs: list[tuple[str, dict]]) -> list[dict]:
    """One row per run: name, status, seconds, its parameters and its metrics; written to ``results.csv``."""
    out_dir = Path(out_dir)
    rows = []
    for name, params in runs:
        status, metrics = _load_run(out_dir / name, params)
        rows.append({"run": name, "status": status.get("status", "missing"),
                     "seconds": round(status.get("seconds", 0.0), 1), "error": status.get("error", ""),
                     **{f"param.{k}": v for k, v in _flat(params).items()},
                     **{f"metric.{k}": v for k, v in _flat(metrics).items()}})
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_path(out_dir / "results.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)
    return rows


def summary_plot(out_dir, rows: list[dict], metric: str | None = None):
    """A bar chart of one numeric metric per run (the first numeric one unless named); ``summary.png``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    numeric = [k for k in dict.fromkeys(k for r in rows for k in r)
               if k.startswith("metric.") and any(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)
                                                  for r in rows)]
    key = f"metric.{metric}" if metric else (numeric[0] if numeric else None)
    if key is None:
        return None
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rows)), 3.5))
    values = [r.get(key) if isinstance(r.get(key), (int, float)) else float("nan") for r in rows]
    ax.bar([r["run"] for r in rows], values, color=["C0" if r["status"] == "done" else "C3" for r in rows])
    ax.set(title=f"{key[7:]} per run (red: failed)", ylabel=key[7:])
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(Path(out_dir) / "summary.png", dpi=100)
    plt.close(fig)
    return key[7:]


@contextmanager
def _threads_per_kernel(jobs: int):
    """While ``jobs`` kernels run at once, each gets ``cores // jobs`` CPU threads through ``OMP_NUM_THREADS`` (torch
    reads it at import), unless the user set it. Uncapped, every kernel takes a thread per core: notebook 04's loss
    ablation with ``--jobs 2`` on 2 cores took 88-97 s that way, against 37-40 s capped (BENCHMARKS.md)."""
    if jobs <= 1 or "OMP_NUM_THREADS" in os.environ:
        yield
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ["OMP_NUM_THREADS"] = str(max(1, cores // jobs))
    try:
        yield
    finally:
        del os.environ["OMP_NUM_THREADS"]


def sweep(notebook, grid, out_dir, *, jobs: int = 1, kernel: str = "murallab", timeout: int = 1800,
          metric: str | None = None) -> list[dict]:
    """Run ``notebook`` over ``grid`` into ``out_dir`` (resumable); returns the result rows."""
    # absolute paths, so that no run depends on the process's working directory
    notebook, out_dir = Path(notebook).resolve(), Path(out_dir).resolve()
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook at {notebook}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs is the number of notebooks run at the same time, an integer >= 1; got {jobs!r}")
    runs = load_grid(grid)
    check_parameters(runs, notebook, grid)
    _require_course_tools()
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = []
    for name, params in runs:
        status, _ = _load_run(out_dir / name, params)
        if status.get("status") != "done":
            todo.append((name, params))
    print(f"{len(runs)} runs, {len(runs) - len(todo)} already done, {len(todo)} to run -> {out_dir}")
    kernels = _Kernels()
    # not ``with ThreadPoolExecutor``: on Ctrl-C its exit would wait for the running notebooks, then run the rest
    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = {}
    try:
        with _threads_per_kernel(jobs), tqdm(total=len(todo), desc="sweep") as bar:
            for n, p in todo:
                futures[pool.submit(_run_one, notebook, out_dir / n, p, kernel, timeout, kernels, n)] = n
            for fut in as_completed(futures):
                status = fut.result()
                bar.update(1)
                if status["status"] != "done":
                    tqdm.write(f"run {futures[fut]} failed: {status['error']} "
                               f"(see {out_dir / futures[fut] / 'error.txt'})", file=sys.stderr)
                collect(out_dir, runs)  # results so far are never lost
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        kernels.stop(futures)
        rows = collect(out_dir, runs)
        stopped = [n for f, n in futures.items() if f.done() and not f.cancelled() and f.exception() is None
                   and f.result()["status"] == "interrupted"]
        done = sum(r["status"] == "done" for r in rows)
        raise SweepInterrupted(f"{'stopped ' + ', '.join(stopped) + '; ' if stopped else ''}{done} of {len(rows)} "
                               f"runs done, results so far in {out_dir / 'results.csv'}; run the same command "
                               f"again to resume", rows) from None
    finally:
        pool.shutdown(wait=not kernels.stopping.is_set())  # after Ctrl-C, kernels.stop has waited already
    rows = collect(out_dir, runs)
    summary_plot(out_dir, rows, metric)
    return rows
