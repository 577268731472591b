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
SUBCOMMANDS = ("train", "export", "restore", "detect", "evaluate", "sweep")
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
    """--help exits 0 and lists every command (module and console script)."""
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


# --- the one error wrapper ----------------------------------------------------------------------------------

@pytest.mark.parametrize("error,status", [(ValueError("bad key 'bass'\n  expected one of base"), 2),
                                          (FileNotFoundError("no config at x.yaml"), 2),
                                          (cli.UsageError("--tile 0"), 2),
                                          (FloatingPointError("the loss is nan"), 2),
                                          (KeyboardInterrupt(), 130)])
def test_run_turns_user_errors_into_one_line(error, status, capsys, monkeypatch):
    """Bad input from any command is one line on stderr, exit 2; Ctrl-C exits 130; neither prints a traceback."""
    monkeypatch.delenv("MURALLAB_TRACEBACK", raising=False)

    def body(args):
        raise error

    assert cli.run("train", body, None) == status
    err = capsys.readouterr().err
    assert err.startswith("murallab train: ") and err.count("\n") == 1 and "Traceback" not in err


def test_run_passes_bugs_through_and_traceback_on_request(monkeypatch):
    """A bug (TypeError) is not dressed up as bad input; MURALLAB_TRACEBACK=1 re-raises user errors too."""
    def bug(args):
        raise TypeError("a bug")

    def bad(args):
        raise ValueError("bad input")

    with pytest.raises(TypeError):
        cli.run("restore", bug, None)
    monkeypatch.setenv("MURALLAB_TRACEBACK", "1")
    with pytest.raises(ValueError):
        cli.run("restore", bad, None)
    assert cli.run("restore", lambda args: None, None) == 0


# --- murallab train: bad configs and run folders ----------------------------------------------------------------

TRAIN_YAML = """\
model: {name: PConvUNet, layers: 2, base: BASE}
loss: {name: PConvLoss, perceptual: 0.0, style: 0.0, weights: null}
data: {patch_size: 32, patches_per_image: 4, n_murals: 4, mural_size: 96, val_fraction: 0.25}
train: {batch_size: 4, seed: 0, progress_bar: false, device: cpu}
phases:
  - {name: a, train: all, lr: 1e-3, epochs: 1}
"""


def train_error(capsys, config: Path, out: Path, *extra) -> str:
    """Run ``murallab train``: it must exit 2 with one line on stderr and no traceback; that line."""
    status = cli.main(["train", "--config", str(config), "--out", str(out), *extra])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("murallab train: error: ")
    return lines[0]


@pytest.mark.parametrize("text,words", [
    (TRAIN_YAML.replace("BASE", "4, bass: 3"), ["model PConvUNet does not take 'bass'", "layers", "base"]),
    (TRAIN_YAML.replace("BASE", "4").replace("weights: null", "weights: null, hole_weight: 6"),
     ["loss PConvLoss does not take 'hole_weight'", "hole"]),
    (TRAIN_YAML.replace("BASE", "4").replace("model:", "model:\n\tname: UNet\nx:"), ["cfg.yaml, line 2", "tabs"]),
    (TRAIN_YAML.replace("BASE", "4").replace("val_fraction: 0.25}", "val_fraction: 0.25"),
     ["cfg.yaml, line 4", "expected ',' or '}'"]),
])
def test_train_bad_config_is_one_line(text, words, tmp_path, capsys, monkeypatch):
    """An unknown model or loss argument (a TypeError deep in build_run before) and malformed YAML (a raw yaml
    traceback before): one line naming the key or the file and line, before any data is built or folder made."""
    monkeypatch.delenv("MURALLAB_TRACEBACK", raising=False)
    config = tmp_path / "cfg.yaml"
    config.write_text(text)
    line = train_error(capsys, config, tmp_path / "run")
    assert all(w in line for w in words), line
    assert not (tmp_path / "run").exists()


def test_train_lr_1e_minus_3_then_resume_with_another_base(tmp_path, capsys, monkeypatch):
    """`lr: 1e-3` trains (it crashed with a TypeError before); resuming that run with base 8 instead of 4 is one
    line naming last.pt and both models (a size-mismatch traceback before)."""
    monkeypatch.delenv("MURALLAB_TRACEBACK", raising=False)
    small, wide = tmp_path / "small.yaml", tmp_path / "wide.yaml"
    small.write_text(TRAIN_YAML.replace("BASE", "4"))
    wide.write_text(TRAIN_YAML.replace("BASE", "8"))
    out = tmp_path / "run"
    assert cli.main(["train", "--config", str(small), "--out", str(out)]) == 0
    capsys.readouterr()
    line = train_error(capsys, wide, out, "--resume")
    assert f"{out / 'last.pt'} was trained with model {{name: PConvUNet, layers: 2, base: 4}}" in line
    assert "this config asks for {name: PConvUNet, layers: 2, base: 8}" in line and "--out" in line


def test_a_diverging_train_exits_2_naming_the_checkpoints_it_kept(tmp_path, capsys, monkeypatch):
    """lr 1e6 diverges in its first epoch: `murallab train` exits 2 with one line naming best.pt and last.pt (it
    exited 0 after a RuntimeWarning that printed a source line), and the warning is gone."""
    import warnings

    monkeypatch.delenv("MURALLAB_TRACEBACK", raising=False)
    config = tmp_path / "cfg.yaml"
    config.write_text(TRAIN_YAML.replace("BASE", "4").replace("lr: 1e-3, epochs: 1", "lr: 1.0e+6, epochs: 2"))
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = train_error(capsys, config, out)
    assert "the run diverged" in line and f"{out / 'best.pt'} keeps the best epoch" in line, line
    assert f"{out / 'last.pt'} holds the latest weights" in line
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    assert not [w for w in caught if "diverged" in str(w.message)]


def test_restore_with_a_diffusion_checkpoint_is_one_line(tmp_path, capsys):
    """A checkpoint of a bare TimeUNet (a noise predictor, not a restoration network) given to `murallab restore`:
    one line naming it and the networks a checkpoint may hold, not a traceback from calling it like a U-Net."""
    from murallab.data import make_mural, save_image, save_mask
    from murallab.diffusion.unet import TimeUNet
    from murallab.checkpoint import save_checkpoint

    net = TimeUNet(base=8, mults=(1, 2))
    save_checkpoint(tmp_path / "diffusion.pt", model=net.state_dict(), config={"model": {"name": "TimeUNet",
                                                                                         **net.config}})
    save_image(make_mural(32, 32, seed=0), tmp_path / "wall.png")
    mask = torch.ones(1, 32, 32)
    mask[:, 8:16, 8:16] = 0
    save_mask(mask, tmp_path / "mask.png")
    status = cli.main(["restore", str(tmp_path / "wall.png"), "--mask", str(tmp_path / "mask.png"),
                       "--mask-hole-value", "0", "--checkpoint", str(tmp_path / "diffusion.pt"),
                       "-o", str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "unknown model 'TimeUNet'" in err and "DiffusionRestorer" in err, err
    assert not (tmp_path / "out.png").exists()
