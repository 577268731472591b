"""Writing files: so that an interrupted run never leaves half of one (write beside the file, then rename over it),
and only where the command means to (``check_output``, before any work)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path):
    """Yield a temporary path in ``path``'s folder; if the block ends without error, rename it over ``path``.

    ``os.replace`` is atomic, so a reader (another thread, a resumed run) sees the old file or the new one, never a
    half-written one. On an error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path, text: str) -> None:
    """``Path(path).write_text(text)``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _same_path(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (or folder): equal once resolved, or the same file on disk."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(out, option: str, inputs: dict, *, folder: bool = False) -> Path:
    """``out`` as a Path, checked before any work (``ValueError``, one line, naming ``option``): not one of
    ``inputs`` (``{what it is: path or None}``), not a folder where a file is wanted (or a file where a folder is),
    not under a file, in a folder one may write in."""
    out = Path(out)
    kind = "folder" if folder else "file"
    for what, given in inputs.items():
        if given is not None and _same_path(out, Path(given)):
            raise ValueError(f"{option} {out} is the {what}; write to a new {kind}")
    if out.exists() and out.is_dir() != folder:
        raise ValueError(f"{option} {out} is a {'file' if folder else 'folder'}; give the {kind} to write")
    nearest = out if folder and out.is_dir() else out.parent
    while not nearest.exists():
        nearest = nearest.parent
    if not nearest.is_dir():
        raise ValueError(f"{option} {out} cannot be written: {nearest} is a file, not a folder")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {out} cannot be written: no permission to write in the folder {nearest}")
    return out
