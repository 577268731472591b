"""Notebook hygiene: papermill can drive every notebook, and they are committed clean."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_conventions(path):
    """Cell 2 is the papermill `parameters` cell with data_dir/seed/output_dir; no outputs are committed;
    the notebook asserts on its numbers and writes metrics.json; it runs on the kit's kernel."""
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown"
    params = cells[1]
    assert "parameters" in params["metadata"].get("tags", [])
    src = "".join(params["source"])
    for knob in ("data_dir", "seed", "output_dir"):
        assert f"{knob} =" in src, f"{path.name}: parameters cell lacks {knob}"
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in cells if c["cell_type"] == "code")
    assert sum("assert " in c for c in code) >= 5
    assert any("metrics.json" in c for c in code)
    assert nb["metadata"]["kernelspec"]["name"] == "murallab"
