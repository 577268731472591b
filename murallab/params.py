"""A notebook's parameters: which they are, and whether their values fit.

Papermill sets them from the command line (``-p patch_size abc`` gives the string ``'abc'``): each notebook's first
code cell calls :func:`check` once per parameter, so a bad value stops the notebook at once with one line,
``patch_size must be an integer >= 32, got 'abc'``, not with a traceback from deep inside its third section.
:func:`notebook_parameters` reads the names a notebook's ``parameters`` cell sets, so that ``murallab sweep`` refuses
a grid key the notebook does not have (:func:`check_parameters`).
"""

from __future__ import annotations

import ast
import difflib
import json
import math
from pathlib import Path

__all__ = ["check", "notebook_parameters", "check_parameters"]

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


def notebook_parameters(notebook) -> list[str] | None:
    """The names a notebook's ``parameters`` cell assigns (the values papermill can set), in order; ``None`` when it
    has no such cell."""
    path = Path(notebook)
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a Jupyter notebook ({type(e).__name__}: {e})") from None
    for cell in cells:
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            try:
                tree = ast.parse(source)
            except SyntaxError as e:
                raise ValueError(f"{path}: its parameters cell is not valid Python ({e})") from None
            names = []
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                names += [t.id for t in targets if isinstance(t, ast.Name)]
            return list(dict.fromkeys(names))
    return None


def check_parameters(runs: list[tuple[str, dict]], notebook, grid) -> None:
    """``ValueError`` naming the notebook's parameters when a run sets one the notebook does not have (a misspelt
    key would otherwise run with the default and be marked done)."""
    known = notebook_parameters(notebook)
    if known is None:
        return
    unknown = list(dict.fromkeys(k for _, params in runs for k in params if k not in known))
    if unknown:
        close = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
        hint = "".join(f" ({k}: did you mean {c[0]}?)" for k, c in close.items() if c)
        verb = "is not a parameter" if len(unknown) == 1 else "are not parameters"
        raise ValueError(f"{grid}: {', '.join(map(repr, unknown))} {verb} of {Path(notebook).name}{hint}; its "
                         f"parameters are {', '.join(known)}")
