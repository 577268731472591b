"""Reading the kit's YAML files (presets in ``configs/``, sweep grids): numbers as people write them, and one-line
errors for text that is not YAML."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

__all__ = ["YAMLLoader", "load_yaml"]


class YAMLLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-3``, ``1E5``, ``-2e-4`` and ``-.5`` as floats.

    PyYAML follows YAML 1.1, whose float pattern needs a dot and a signed exponent (``1.0e-3``); written the way
    people write them, such numbers came back as strings. This adds YAML 1.2's float pattern (after the
    integer one, so ``3`` stays an int).
    """


YAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"))


def load_yaml(path):
    """The contents of the YAML file ``path``, read with :class:`YAMLLoader`.

    Raises FileNotFoundError for a missing file and ValueError, one line naming the file and the line, for text
    that is not valid YAML (a tab used for indentation, an unclosed bracket, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no YAML file at {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not a UTF-8 text file; expected YAML ({e.reason} at byte {e.start})") from None
    try:
        return yaml.load(text, Loader=YAMLLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        context, opened = getattr(e, "context", None), getattr(e, "context_mark", None)
        if context and opened is not None and opened is not mark:
            context += f" at line {opened.line + 1}"
        what = " ".join(f"{context + ': ' if context else ''}{problem}".split())  # one line
        if "'\\t'" in what:
            what += " (indent with spaces: YAML does not allow tabs)"
        raise ValueError(f"{path}{where}: not valid YAML: {what}") from None
