"""The shape of the library: murallab's modules import one another without a cycle, only downwards through the
layers below, and never inside a function (the command line excepted: each command imports what it runs)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "murallab"

#: bottom to top: a module imports only from its own layer or the ones before it
LAYERS = [
    ["murallab._device", "murallab._atomic", "murallab._yaml", "murallab.tiling", "murallab.params"],
    ["murallab.data", "murallab.classical", "murallab.pretrained", "murallab.checkpoint"],
    ["murallab.losses", "murallab.metrics"],
    ["murallab.nn"],
    ["murallab.diffusion"],
    ["murallab.models"],
    ["murallab.train", "murallab.restore", "murallab.evaluate", "murallab.viz"],
    ["murallab.widgets", "murallab.sweep", "murallab.exercises"],
    ["murallab", "murallab.cli"],  # the package itself (murallab.restore, murallab.device) and the command line
]
#: modules whose functions may import (lazily, for a fast start), never to dodge a cycle
LAZY = {"murallab.cli"}


def _modules() -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is a package)}`` for every module of murallab."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


MODULES = _modules()


def _imports(name: str) -> list[tuple[str, bool, int]]:
    """``(imported murallab module, at module level, line)`` for every import in module ``name``."""
    path, package = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    here = name if package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = here.split(".")[:len(here.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            if target == "murallab" or target.startswith("murallab."):
                while target not in MODULES:
                    target = target.rpartition(".")[0]
                found.append((target, id(node) in top, node.lineno))
    return found


def _layer(module: str) -> int:
    best = max((g for g in (m for layer in LAYERS for m in layer) if module == g or module.startswith(g + ".")),
               key=len, default=None)
    assert best is not None, f"{module} is in no layer of this test: add it to LAYERS"
    return next(i for i, layer in enumerate(LAYERS) if best in layer)


def _edges() -> dict[str, set[str]]:
    """Module -> the modules its imports load (at module level or inside a function): each target and the packages
    above it (outside its own)."""
    edges = {}
    for name in MODULES:
        deps = set()
        for target, _, _ in _imports(name):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                parent = ".".join(parts[:i])
                if not (name == parent or name.startswith(parent + ".")):
                    deps.add(parent)
        edges[name] = deps & set(MODULES)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(u):
        state[u] = "open"
        stack.append(u)
        for v in sorted(edges[u]):
            if state.get(v) == "open":
                return stack[stack.index(v):] + [v]
            if v not in state and (found := visit(v)):
                return found
        stack.pop()
        state[u] = "done"
        return None

    for u in sorted(edges):
        if u not in state and (found := visit(u)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    assert _cycle(_edges()) is None, " -> ".join(_cycle(_edges()))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_imports_point_down_the_layers():
    up = [f"{name} (layer {_layer(name)}) imports {target} (layer {_layer(target)}), line {line}"
          for name in sorted(MODULES) for target, _, line in _imports(name)
          if _layer(target) > _layer(name)]
    assert not up, "\n".join(up)


def test_no_import_hides_inside_a_function():
    hidden = [f"{name}, line {line}: {target}" for name in sorted(MODULES) if name not in LAZY
              for target, top, line in _imports(name) if not top]
    assert not hidden, "\n".join(hidden)


@pytest.mark.parametrize("low,high", [("murallab.nn", "murallab.diffusion"), ("murallab.nn", "murallab.train"),
                                      ("murallab.nn", "murallab.models"), ("murallab.checkpoint", "murallab.models"),
                                      ("murallab.diffusion", "murallab.train")])
def test_the_lower_packages_do_not_know_the_higher_ones(low, high):
    """nn never imports diffusion, train or the registry; checkpoint files know no network."""
    names = [n for n in MODULES if n == low or n.startswith(low + ".")]
    assert names
    assert not [(n, t) for n in names for t, _, _ in _imports(n) if t == high or t.startswith(high + ".")]


def test_no_module_is_over_400_lines():
    """One concept a module, readable in one sitting."""
    long = {name: n for name, (path, _) in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, long


def test_one_restore_for_every_network():
    """``murallab.restore`` is the function of ``murallab/restore.py``, and networks say their kind in ``task``."""
    import murallab
    from murallab import models
    from murallab.restore import TASKS, restore

    assert murallab.restore is restore
    assert {cls.task for cls in models.MODELS.values()} == set(TASKS)
