"""What every checker shares: the verdict line, the blank test, a safe call and a few random cases."""

from __future__ import annotations

import torch

from ..data import random_walk_masks

BLANK_HINT = "fill in the blank first (it still holds `...` or returns None)"


class NotYet(Exception):
    """Raised inside a checker to stop at the first problem; ``check`` turns it into the "not yet" line."""

    def __init__(self, hint: str):
        super().__init__(hint)
        self.hint = hint


def report(ok: bool, what: str, hint: str = "") -> bool:
    """Print ``✓ correct: what`` or ``✗ not yet: what`` and the hint; return ``ok``."""
    print(f"✓ correct: {what}" if ok else f"✗ not yet: {what}\n  hint: {hint}")
    return ok


def is_blank(answer) -> bool:
    """An unfilled blank: ``...`` or ``None``."""
    return answer is None or answer is Ellipsis


def call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; a blank, an error or a ``None`` result raise :class:`NotYet` with a hint."""
    if is_blank(fn):
        raise NotYet(BLANK_HINT)
    if not callable(fn):
        raise NotYet(f"expected a function, got {type(fn).__name__}")
    try:
        out = fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - any error is the student's to see
        raise NotYet(f"your function raised {type(e).__name__}: {e}") from None
    if is_blank(out):
        raise NotYet(BLANK_HINT)
    return out


def number(answer, what: str = "a number", *, nan: bool = False) -> float:
    """``answer`` as a float; a blank or something that is not a number (NaN too, unless ``nan``) raise
    :class:`NotYet`."""
    if is_blank(answer):
        raise NotYet(BLANK_HINT)
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise NotYet(f"expected {what}, got {answer!r}") from None
    if value != value and not nan:
        raise NotYet(f"expected {what}, got NaN")
    return value


def check(what: str, body) -> bool:
    """Run ``body()`` (which raises :class:`NotYet` at the first problem, or returns the success text) and report."""
    try:
        done = body()
    except NotYet as e:
        return report(False, what, e.hint)
    return report(True, done or what)


def cases(seed: int = 0):
    """Two float64 (image, mask) pairs of different sizes: ``(B, 3, H, W)`` in [0, 1], masks 1 = known."""
    g = torch.Generator().manual_seed(seed)
    for b, c, h, w in [(1, 3, 16, 16), (2, 3, 21, 17)]:
        yield torch.rand(b, c, h, w, generator=g, dtype=torch.float64), \
            random_walk_masks(b, h, w, hole_ratio=(0.3, 0.5), seed=seed).double()
