"""The murallab command line (module and console script) and murallab.device()."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import murallab
from murallab import cli

REPO = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("train", "restore", "detect", "evaluate", "sweep")
CONSOLE_SCRIPT = Path(sys.executable).parent / "murallab"


@pytest.fixture(scope="module")
def cli_runs():
    """`python -m murallab.cli --help` and `murallab --help`, run concurrently."""
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"no console script at {CONSOLE_SCRIPT} (package not installed in this environment)")
    cmds = {
        "module_help": [sys.executable, "-m", "murallab.cli", "--help"],
        "script_help": [str(CONSOLE_SCRIPT), "--help"],
    }
    procs = {k: subprocess.Popen(c, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for k, c in cmds.items()}
    out = {}
    for k, p in procs.items():
        stdout, stderr = p.communicate(timeout=120)
        out[k] = subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("which", ["module_help", "script_help"])
def test_help_lists_subcommands(cli_runs, which):
    """--help exits 0 and lists train, restore, detect, evaluate and sweep (module and console script)."""
    r = cli_runs[which]
    assert r.returncode == 0, r.stderr
    assert "usage: murallab" in r.stdout
    for name in SUBCOMMANDS:
        assert name in r.stdout, name


@pytest.mark.parametrize("name,option", [("train", "--config"), ("restore", "--mask-hole-value"),
                                         ("detect", "--threshold"), ("evaluate", "--gt"), ("sweep", "--grid")])
def test_every_subcommand_has_help(name, option, capsys):
    """`murallab NAME --help` exits 0 and documents the command's options."""
    with pytest.raises(SystemExit) as e:
        cli.main([name, "--help"])
    assert e.value.code == 0
    assert option in capsys.readouterr().out


def test_missing_required_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train"])
    assert e.value.code == 2
    assert "--config" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    """main([]) prints the help and returns 0."""
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "usage: murallab" in out and all(n in out for n in SUBCOMMANDS)


def test_unknown_command_and_version(capsys):
    """An unknown subcommand is an argparse error (exit 2); --version prints the package version."""
    with pytest.raises(SystemExit) as e:
        cli.main(["paint"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert murallab.__version__ in capsys.readouterr().out


# --- murallab.device ----------------------------------------------------------------------------------

def test_device_cpu_without_cuda():
    """With no CUDA GPU, device() and device('auto') are the CPU."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible here")
    assert murallab.device() == torch.device("cpu")
    assert murallab.device("auto") == torch.device("cpu")


def test_device_cuda_without_cuda_raises():
    """With no CUDA GPU, asking for 'cuda' raises RuntimeError explaining there is none and what to use."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible here")
    with pytest.raises(RuntimeError, match="no CUDA GPU") as e:
        murallab.device("cuda")
    assert "device='cpu'" in str(e.value)
    with pytest.raises(RuntimeError):
        murallab.device(torch.device("cuda:0"))


def test_device_explicit_cpu():
    """An explicit 'cpu' (string or torch.device) is returned as torch.device('cpu')."""
    assert murallab.device("cpu") == torch.device("cpu")
    assert murallab.device(torch.device("cpu")) == torch.device("cpu")


def test_device_with_simulated_gpus(monkeypatch):
    """With two (simulated) GPUs: auto picks cuda, 'cuda:1' is accepted, 'cuda:2' raises naming the count."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert murallab.device() == torch.device("cuda")
    assert murallab.device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(RuntimeError, match="2 CUDA GPU"):
        murallab.device("cuda:2")


def test_device_rejects_nonsense():
    """A string that is no device type raises (from torch.device)."""
    with pytest.raises(RuntimeError):
        murallab.device("gpu-please")
