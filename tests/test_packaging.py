"""The kit installs the same way everywhere: pyproject, constraints.txt, environment.yml and the Makefile agree, and
the library installs into a student's project without pinning its torch or bringing the Jupyter stack."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}  # conda-forge names that differ from PyPI's
#: what only the notebooks, nbval and the sweep runner need: never a runtime dependency of the library
COURSE_TOOLS = {"jupyterlab", "notebook", "ipywidgets", "ipykernel", "nbconvert", "nbval", "nbclient", "nbformat",
                "papermill", "jupyter", "jupyter-client"}
#: an API the library uses -> (package, the release that introduced it)
API_FLOORS = {"torch.OutOfMemoryError": ("torch", "2.5"), "torch.amp.GradScaler": ("torch", "2.3"),
              "tv_tensors": ("torchvision", "0.16"), "transforms.v2": ("torchvision", "0.16")}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _reqs(lines) -> dict[str, Requirement]:
    reqs = [Requirement(line) for line in lines]
    return {r.name.lower(): r for r in reqs}


def _constraints() -> dict[str, Requirement]:
    lines = [line.split("#")[0].strip() for line in (ROOT / "constraints.txt").read_text().splitlines()]
    return _reqs(line for line in lines if line)


def _floor(req: Requirement) -> Version:
    floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
    assert len(floors) == 1, f"{req} should give one lower bound"
    return floors[0]


def _specs(req: Requirement) -> set[tuple[str, str]]:
    """(operator, version) pairs, without pip's exclusions of local builds (2.13.0+cpu), which conda does not need."""
    return {(s.operator, s.version) for s in req.specifier if not (s.operator == "!=" and "+" in s.version)}


def test_runtime_dependencies_are_ranges_without_the_course_tools():
    """`pip install -e murallab` in a project with its own torch keeps that torch and brings no Jupyter stack."""
    project = _project()
    runtime = _reqs(project["dependencies"])
    assert not COURSE_TOOLS & set(runtime), "notebook and sweep tools belong in the `course` extra"
    assert not any(name.startswith("jupyter") for name in runtime)
    for name in ("torch", "torchvision"):
        req = runtime[name]
        assert all(s.operator == ">=" for s in req.specifier), f"{req}: a range for students' projects, not a pin"
    course = _reqs(project["optional-dependencies"]["course"])
    assert {"jupyterlab", "ipywidgets", "ipykernel", "nbconvert", "nbval", "papermill"} <= set(course)
    assert not {"torch", "torchvision"} & (set(course) | set(_reqs(project["optional-dependencies"]["test"])))


def test_torch_floor_covers_the_apis_the_library_uses():
    """The floor is not a guess: every API in API_FLOORS that murallab/ uses is no newer than it, and torchvision's
    floor is the release made for torch's floor (torch 2.N pairs with torchvision 0.(N+15))."""
    runtime = _reqs(_project()["dependencies"])
    source = "\n".join(p.read_text() for p in (ROOT / "murallab").rglob("*.py"))
    used = [api for api in API_FLOORS if api in source]
    assert "torch.OutOfMemoryError" in used  # if restore.py stops using it, revisit the floor (it may go down)
    for api in used:
        package, since = API_FLOORS[api]
        assert _floor(runtime[package]) >= Version(since), f"{api} needs {package}>={since}"
    torch, vision = _floor(runtime["torch"]), _floor(runtime["torchvision"])
    assert (vision.major, vision.minor) == (0, torch.minor + 15), (torch, vision)


def test_constraints_pin_the_proven_pair_for_the_venv():
    """.venv gets torch 2.13.0 + torchvision 0.28.0 from the registry, never the local CPU-only 2.13.0+cpu wheel (with
    which `import torchvision` fails); the pair satisfies pyproject's ranges and pairs by the same rule."""
    pins = _constraints()
    assert set(pins) == {"torch", "torchvision"}
    assert str(pins["torch"].specifier) in ("!=2.13.0+cpu,==2.13.0", "==2.13.0,!=2.13.0+cpu")
    assert not pins["torch"].specifier.contains("2.13.0+cpu") and pins["torch"].specifier.contains("2.13.0")
    assert str(pins["torchvision"].specifier) == "==0.28.0"
    runtime = _reqs(_project()["dependencies"])
    for name, pin in pins.items():
        version = next(s.version for s in pin.specifier if s.operator == "==")
        assert runtime[name].specifier.contains(version), f"constraints.txt's {name} {version}: not in {runtime[name]}"


def test_make_setup_installs_the_course_and_test_extras_with_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(r"^\$\(STAMP\):(.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert rule, "the Makefile's .venv stamp rule"
    prereqs, recipe = rule.group(1).split(), rule.group(2)
    assert {"pyproject.toml", "constraints.txt"} <= set(prereqs), "a changed pin must rebuild .venv"
    install = next(line for line in recipe.splitlines() if "pip install" in line)
    assert "-c constraints.txt" in install and '-e ".[course,test]"' in install, install


def test_environment_yml_matches_pyproject_and_constraints():
    """environment.yml holds pyproject's dependencies and its `course` and `test` extras, each with the same bounds,
    torch and torchvision at constraints.txt's pair, and nothing else."""
    project = _project()
    extras = project["optional-dependencies"]
    wanted = {}
    for line in project["dependencies"] + extras["course"] + extras["test"]:
        req = Requirement(line)
        assert wanted.setdefault(req.name.lower(), _specs(req)) == _specs(req), f"{req.name}: two different bounds"
    for name, pin in _constraints().items():
        wanted[name] = _specs(pin)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = {}
    for dep in env["dependencies"]:
        for entry in dep["pip"] if isinstance(dep, dict) else [dep]:
            if entry.startswith("-e"):
                have["-e"] = entry
                continue
            conda = not isinstance(dep, dict)
            if conda:  # conda's pin is "name=version"
                entry = re.sub(r"^([A-Za-z0-9_.\-]+)=(?=[0-9])", r"\1==", entry)
            req = Requirement(entry.replace(" ", ""))
            have[CONDA_TO_PIP.get(req.name.lower(), req.name.lower())] = _specs(req)
    assert have.pop("-e") == "-e .", "environment.yml must install murallab itself with pip -e ."
    assert have.pop("python") == {("==", "3.11")}
    assert have.pop("pip") == set()
    assert have == wanted


def test_the_library_imports_without_the_course_tools():
    """Every murallab module imports in an environment without Jupyter, papermill or the test references, as a
    student's project installed with plain `pip install -e murallab` is."""
    blocked = sorted(COURSE_TOOLS - {"jupyter-client"} | {"jupyter_client", "IPython", "skimage", "cv2",
                                                             "pytorch_msssim", "kornia", "diffusers"})
    code = (f"import sys\nfor m in {blocked!r}:\n    sys.modules[m] = None\n"
            "import importlib, pkgutil, murallab\n"
            "for m in pkgutil.walk_packages(murallab.__path__, 'murallab.'):\n"
            "    importlib.import_module(m.name)\n"
            "print('imported')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0 and "imported" in out.stdout, out.stderr


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
