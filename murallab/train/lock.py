"""One training run per run folder: ``fit`` holds ``<out_dir>/run.lock`` while it runs (``@locks_run_folder``).

The lock file holds the owner's process id. A second run into the same folder stops at once with one line instead
of interleaving its ``metrics.csv``, TensorBoard events and checkpoints with the first. The lock is removed when the
run ends, by an error too (or when its process exits); a lock left by a process that no longer runs (a killed run)
is taken over, with a one-line note. Under torchrun only rank 0 writes to the folder, so only rank 0 takes the lock.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import weakref
from pathlib import Path

from . import distributed

LOCK_NAME = "run.lock"


class RunFolderBusyError(FileExistsError):
    """Another process is training into the same run folder."""


def _running(pid: int) -> bool:
    """Whether a process with this id runs (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    except OSError:
        return False
    return True


def _owner(path: Path) -> int | None:
    """The process id in a lock file; ``None`` if it holds none (being written, or damaged)."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _release(path: Path, pid: int) -> None:
    if _owner(path) == pid:
        path.unlink(missing_ok=True)


class RunLock:
    """Hold ``folder/run.lock`` from now until :meth:`release`, the object's end or the process's exit.

    Raises :class:`RunFolderBusyError` (one line) when a running process holds it. The same process may take it
    again (a notebook that trains into one folder twice).
    """

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_NAME
        self._finalizer = None
        if distributed.world()[0] != 0:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        for attempt in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = _owner(self.path)
                if owner is not None and owner != pid and _running(owner):
                    raise RunFolderBusyError(
                        f"{self.path.parent} is in use by another training run (process {owner}, which holds "
                        f"{self.path}); wait for it to end, or choose another output folder (--out)") from None
                if attempt:  # another process took the stale lock first
                    raise RunFolderBusyError(f"{self.path.parent} was just taken by another training run; choose "
                                             f"another output folder (--out)") from None
                if owner != pid:
                    who = "a process that no longer runs" if owner is None else f"process {owner}, which no longer runs"
                    print(f"{self.path}: taking over the lock left by {who}", file=sys.stderr)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{pid}\n")
            break
        self._finalizer = weakref.finalize(self, _release, self.path, pid)

    def release(self) -> None:
        """Remove the lock file (if this process still holds it)."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def locks_run_folder(fit):
    """``fit`` holding a :class:`RunLock` on its ``out_dir`` argument while it runs, whether it returns or raises."""
    signature = inspect.signature(fit)

    @functools.wraps(fit)
    def locked(*args, **kwargs):
        with RunLock(signature.bind(*args, **kwargs).arguments["out_dir"]):
            return fit(*args, **kwargs)

    return locked
