"""The kit installs the same way everywhere: pyproject, environment.yml and the Makefile agree."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}  # conda-forge names that differ from PyPI's


def _split(req: str) -> tuple[str, str]:
    """'torch==2.13.0,!=2.13.0+cpu' -> ('torch', '2.13.0'): the name and the version it pins or bounds."""
    name = re.match(r"[A-Za-z0-9_.\-]+", req).group(0).lower()
    version = re.search(r"(?:==|>=|=)\s*([0-9][0-9.]*)", req)
    return name, version.group(1) if version else ""


def test_environment_yml_matches_pyproject():
    """Every pyproject dependency (main + test extra) is in environment.yml at the same version, and nothing else."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = {}
    for dep in env["dependencies"]:
        entries = dep["pip"] if isinstance(dep, dict) else [dep]
        for e in entries:
            name, version = _split(e.replace(" ", "")) if not e.startswith("-e") else ("-e", "")
            have[CONDA_TO_PIP.get(name, name)] = version
    assert have.pop("-e") == "", "environment.yml must install murallab itself with pip -e ."
    assert have.pop("python").startswith("3.11")
    have.pop("pip")
    assert have == wanted


def test_torch_pair_excludes_the_local_cpu_wheel():
    """torch is pinned to the registry build that matches torchvision, never the local +cpu wheel."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(d for d in deps if d.startswith("torch=") or d.startswith("torch!"))
    assert "!=2.13.0+cpu" in torch_req and "==2.13.0" in torch_req
    assert "torchvision==0.28.0" in deps


def test_makefile_targets_and_ci():
    """The README's commands exist as Make targets, and CI runs the README's test command."""
    makefile = (ROOT / "Makefile").read_text()
    for target in ("setup", "tutorial", "test", "lab", "bench"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make tutorial" in readme and "make test" in readme


def test_readme_python_examples_run():
    """Every ```python block of the README runs as written."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
