"""murallab.params.check: a notebook parameter of the wrong type or out of range is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from murallab.params import check, notebook_parameters


@pytest.mark.parametrize("value,kw,message", [
    ("abc", dict(least=32), "patch_size must be an integer >= 32, got 'abc'"),
    (16, dict(least=32), "patch_size must be an integer >= 32, got 16"),
    (64.0, dict(least=32), "patch_size must be an integer >= 32, got 64.0"),
    (True, dict(least=0), "patch_size must be an integer >= 0, got True"),
    (300, dict(least=32, most=256), "patch_size must be an integer between 32 and 256, got 300"),
    ("abc", dict(least=32, optional=True), "patch_size must be an integer >= 32, or None, got 'abc'"),
])
def test_integer_parameters(value, kw, message):
    with pytest.raises(ValueError) as e:
        check("patch_size", value, **kw)
    assert str(e.value) == message


def test_good_values_are_returned():
    assert check("patch_size", 64, least=32) == 64
    assert check("lr", 3, float, above=0) == 3  # an integer is a number
    assert check("epochs", None, least=1, each=True, optional=True) is None
    assert check("epochs", [2, 1], least=1, each=True) == [2, 1]
    assert check("hole_range", (0.1, 0.4), float, each=2, least=0.0, most=1.0) == (0.1, 0.4)
    assert check("schedule_kind", "linear", choices=("cosine", "linear")) == "linear"
    assert check("solutions", False, bool) is False


@pytest.mark.parametrize("name,value,args,kw,words", [
    ("lr", "1e-3", (float,), dict(above=0), "lr must be a number > 0, got '1e-3'"),
    ("lr", float("nan"), (float,), dict(above=0), "lr must be a number > 0, got nan"),
    ("epochs", [2, 0], (), dict(least=1, each=True), "epochs must be a list of integers >= 1, got [2, 0]"),
    ("epochs", [], (), dict(least=1, each=True), "epochs must be a list of integers >= 1, got []"),
    ("epochs", 3, (), dict(least=1, each=True), "epochs must be a list of integers >= 1, got 3"),
    ("hole_range", [0.1], (float,), dict(each=2, least=0.0, most=1.0),
     "hole_range must be a list of 2 numbers between 0.0 and 1.0, got [0.1]"),
    ("schedule_kind", "cosin", (), dict(choices=("cosine", "linear")),
     "schedule_kind must be one of 'cosine', 'linear', got 'cosin'"),
    ("solutions", "False", (bool,), {}, "solutions must be True or False, got 'False'"),
    ("loss_weights", "structural", (dict,), dict(optional=True),
     "loss_weights must be a dict, or None, got 'structural'"),
])
def test_other_kinds(name, value, args, kw, words):
    with pytest.raises(ValueError) as e:
        check(name, value, *args, **kw)
    assert str(e.value) == words


NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem[:2] for p in NOTEBOOKS])
def test_every_notebook_checks_every_parameter_first(path):
    """The first code cell after `parameters` checks each parameter (papermill -p patch_size abc then stops there
    with one line), and the checks run with the defaults."""
    import json

    cells = json.loads(path.read_text())["cells"]
    i = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    first = next(c for c in cells[i + 1:] if c["cell_type"] == "code")
    source = "".join(first["source"])
    lines = source.splitlines()
    through_checks = "\n".join(lines[:max(k for k, line in enumerate(lines) if line.startswith("check(")) + 1])
    assert "from murallab.params import check" in source
    names = notebook_parameters(path)
    missing = [n for n in names if f'check("{n}"' not in source and f'("{n}", {n})' not in source]
    assert not missing, f"{path.name} does not check {missing}"
    scope = {}
    exec("".join(cells[i]["source"]), scope)  # the defaults
    exec(through_checks, scope)  # the imports and the checks
    scope["patch_size" if "patch_size" in names else "seed"] = "abc"
    with pytest.raises(ValueError, match="must be an integer .*, got 'abc'"):
        exec(through_checks, scope)
