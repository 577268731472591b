"""Checking a notebook's parameters, which papermill sets from the command line (``-p patch_size abc`` gives the
string ``'abc'``): each notebook's first code cell calls :func:`check` once per parameter, so a bad value stops the
notebook at once with one line, ``patch_size must be an integer >= 32, got 'abc'``, not with a traceback from deep
inside its third section.
"""

from __future__ import annotations

import math

__all__ = ["check"]

#: kind -> (one, many) in a message
_NAMES = {int: ("an integer", "integers"), float: ("a number", "numbers"), bool: ("True or False", "booleans"),
          str: ("a string", "strings"), dict: ("a dict", "dicts")}


def _is(value, kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):  # True is an int to Python, never to a notebook's reader
        return False
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


def _expected(kind, least, above, most, choices, each, optional) -> str:
    if choices is not None:
        text = "one of " + ", ".join(map(repr, choices))
    else:
        one, many = _NAMES[kind]
        text = one if each is False else (f"a list of {each} {many}" if each is not True else f"a list of {many}")
        if least is not None and most is not None:
            text += f" between {least} and {most}"
        elif least is not None:
            text += f" >= {least}"
        elif above is not None:
            text += f" > {above}"
        elif most is not None:
            text += f" <= {most}"
    return text + (", or None" if optional else "")


def check(name: str, value, kind=int, *, least=None, above=None, most=None, choices=None, each: bool | int = False,
          optional: bool = False):
    """``value`` if it is a ``kind`` (int, float, bool, str or dict) in range, else ``ValueError`` in one line.

    Args:
        least, above, most: bounds (``>= least``, ``> above``, ``<= most``) for numbers.
        choices: the allowed values (then ``kind`` is not checked).
        each: ``True`` for a non-empty list or tuple whose every item is checked, or the number of items it must have.
        optional: ``None`` is accepted too.
    """
    def fine(v) -> bool:
        if choices is not None:
            return v in choices
        return (_is(v, kind) and (least is None or v >= least) and (above is None or v > above)
                and (most is None or v <= most))

    if optional and value is None:
        return value
    if each is False:
        ok = fine(value)
    else:
        ok = (isinstance(value, (list, tuple)) and len(value) > 0 and (each is True or len(value) == each)
              and all(fine(v) for v in value))
    if not ok:
        raise ValueError(f"{name} must be {_expected(kind, least, above, most, choices, each, optional)}, "
                         f"got {value!r}")
    return value
