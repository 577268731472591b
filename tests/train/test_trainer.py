"""murallab.train: phases, schedule, early stopping, checkpoints, resume (also after SIGKILL), NaN, DDP."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from murallab.nn import PConvUNet
from murallab.train import (DivergedError, NonFiniteLossError, Phase, apply_phase, build_run, fit, load_checkpoint,
                            load_config, load_model, train_step)

REPO = Path(__file__).resolve().parents[2]
TINY = {"model": {"name": "PConvUNet", "layers": 2, "base": 4},
        "loss": {"name": "PConvLoss", "perceptual": 0.0, "style": 0.0, "weights": None},
        "data": {"patch_size": 32, "patches_per_image": 4, "n_murals": 4, "mural_size": 96, "val_fraction": 0.25},
        "train": {"batch_size": 4, "seed": 0, "progress_bar": False, "log_every": 1, "image_every": 2},
        "phases": [{"name": "a", "train": "all", "lr": 1e-3, "epochs": 2}]}


def tiny(**changes) -> dict:
    cfg = load_config({k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in TINY.items()})
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            cfg[section][field] = value
        else:
            cfg[section] = value
    return cfg


def run(cfg, out, **kw):
    r = build_run(cfg)
    return r, fit(r["model"], r["loss"], r["train_set"], r["val_set"], r["phases"], r["train"], out,
                  config={"model": cfg["model"]}, **kw)


def run_interrupted_after_epoch_1(cfg, out, monkeypatch):
    """Run ``cfg`` into ``out`` and stop it at the end of its first epoch, just after last.pt is written."""
    import murallab.train.trainer as trainer

    class Interrupted(Exception):
        pass

    flush = trainer.RunLog.flush

    def flush_then_interrupt(self):
        flush(self)
        raise Interrupted

    with monkeypatch.context() as m:
        m.setattr(trainer.RunLog, "flush", flush_then_interrupt)
        with pytest.raises(Interrupted):
            run(cfg, out)


# --- phases ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["all", "decoder", "frozen_encoder_bn"])
def test_phase_trains_only_the_intended_parameters(mode):
    torch.manual_seed(0)
    model = PConvUNet(layers=3, base=4)
    params = apply_phase(model, Phase("p", lr=1e-2, epochs=1, train=mode))
    model.train()
    enc_bn = [m for m in model.enc.modules() if isinstance(m, nn.BatchNorm2d)]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    stats = [m.running_mean.clone() for m in enc_bn]
    opt = torch.optim.Adam(params, lr=1e-2)
    image = torch.rand(4, 3, 32, 32)
    mask = (torch.rand(4, 1, 32, 32) > 0.3).float()
    (model(image * mask, mask) - image).abs().mean().backward()
    opt.step()
    for name, p in model.named_parameters():
        changed = not torch.equal(p, before[name])
        assert changed == (mode != "decoder" or not name.startswith("enc.")), name
    frozen_stats = all(torch.equal(a, m.running_mean) for a, m in zip(stats, enc_bn))
    assert frozen_stats == (mode != "all")


def test_bad_phase_is_rejected():
    with pytest.raises(ValueError, match="train must be one of"):
        Phase("p", lr=1e-3, epochs=1, train="encoder")
    with pytest.raises(ValueError, match="minutes is a time budget"):
        Phase("p", lr=1e-3, epochs=1, minutes=0)


# --- schedule and early stopping -------------------------------------------------------------------------

def test_cosine_schedule_counts_steps_and_never_climbs(tmp_path):
    cfg = tiny(train__log_every=1)
    _, result = run(cfg, tmp_path)
    steps_per_epoch = len(build_run(cfg)["train_set"]) // cfg["train"]["batch_size"]
    total = 2 * steps_per_epoch
    lrs = [v for _, v in result["history"]["lr"]]
    expected = [1e-3 * (1 + math.cos(math.pi * s / total)) / 2 for s in range(1, total + 1)]
    assert lrs == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


class FakeClock:
    """``time`` for murallab.train.trainer whose ``perf_counter`` advances ``tick`` seconds a call: ``fit`` reads it
    at the start and the end of each epoch, so every epoch takes ``tick`` seconds."""

    def __init__(self, tick):
        self.now, self.tick = 0.0, tick

    def perf_counter(self):
        self.now += self.tick
        return self.now


def test_a_time_budget_trains_the_epochs_that_fit_with_a_cosine_that_ends_there(tmp_path, monkeypatch):
    """minutes: 0.5 (30 s) at 7 s an epoch, at most 10 epochs: 4 epochs (28 s); the learning rate, planned over 10
    epochs during the first, never climbs and reaches 0 at the end of the 4th."""
    import murallab.train.trainer as trainer
    monkeypatch.setattr(trainer, "time", FakeClock(7.0))
    _, result = run(tiny(phases=[{"name": "a", "lr": 1e-3, "epochs": 10, "minutes": 0.5}]), tmp_path)
    steps = len(build_run(tiny())["train_set"]) // 4
    assert result["epochs"] == 4
    lrs = [v for _, v in result["history"]["lr"]]
    assert len(lrs) == 4 * steps and all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lrs[steps - 1] == pytest.approx(1e-3 * (1 + math.cos(math.pi / 10)) / 2)  # epoch 1 of 10
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_a_resumed_budget_counts_the_time_spent_before_the_interruption(tmp_path, monkeypatch):
    """30 s at 7 s an epoch, interrupted after epoch 1 (7 s spent) and resumed on a machine twice as slow: epoch 2
    brings the total to 21 s, and a third 14-s epoch would not fit, so the phase ends after 2; with the plan of the
    first run (4 epochs) or a fresh budget (30 s from the resume: 3 epochs) it would not."""
    import murallab.train.trainer as trainer
    cfg = tiny(phases=[{"name": "a", "lr": 1e-3, "epochs": 10, "minutes": 0.5}])
    monkeypatch.setattr(trainer, "time", FakeClock(7.0))
    run_interrupted_after_epoch_1(cfg, tmp_path, monkeypatch)
    progress = load_checkpoint(tmp_path / "last.pt")["progress"]
    assert progress["phase_epochs"] == 4 and progress["phase_seconds"] == pytest.approx(7.0)
    monkeypatch.setattr(trainer, "time", FakeClock(14.0))
    _, result = run(cfg, tmp_path, resume=True)
    assert result["epochs"] == 2


def test_early_stopping_fires_on_a_plateau(tmp_path, monkeypatch):
    """Validation PSNR 20, 21, 21, 20.5 (then it would jump to 30): patience 2 stops after epoch 4, and best.pt
    holds epoch 2 (ties are not improvements)."""
    import murallab.train.trainer as trainer
    scripted = iter([20.0, 21.0, 21.0, 20.5, 30.0, 30.0])
    monkeypatch.setattr(trainer, "validate", lambda *a, **k: {"loss": 1.0, "psnr": next(scripted)})
    cfg = tiny(phases=[{"name": "flat", "lr": 1e-3, "epochs": 6, "patience": 2}])
    _, result = run(cfg, tmp_path)
    assert result["stopped_early"] == ["flat"]
    assert result["epochs"] == 4 and result["best"] == 21.0
    assert load_checkpoint(tmp_path / "best.pt")["progress"]["global_epoch"] == 2


def test_best_restarts_when_a_phase_validates_on_other_data(tmp_path, monkeypatch):
    """Procedural validation PSNR 30 then real 24, 25: best.pt must follow the real phase (a best measured on other
    data is not comparable), and a later worse real epoch does not replace it."""
    import murallab.train.trainer as trainer
    scripted = iter([30.0, 24.0, 25.0, 24.5])
    monkeypatch.setattr(trainer, "validate", lambda *a, **k: {"loss": 1.0, "psnr": next(scripted)})
    cfg = tiny(phases=[{"name": "pre", "lr": 1e-3, "epochs": 1, "data": "procedural"},
                       {"name": "real", "lr": 1e-3, "epochs": 3}])
    r = build_run(cfg)
    sets = {"main": r["train_set"], "procedural": r["train_set"]}
    result = fit(r["model"], r["loss"], sets, {"main": r["val_set"], "procedural": r["val_set"]}, r["phases"],
                 r["train"], tmp_path, config={"model": cfg["model"]})
    best = load_checkpoint(tmp_path / "best.pt")["progress"]
    assert result["best"] == 25.0 and best["global_epoch"] == 3 and best["best_data"] == "main"


def test_a_phase_on_both_trains_on_real_and_procedural_murals(tmp_path, make_mural_folder):
    """data: both concatenates the run's murals and the procedural ones, for training and validation."""
    import murallab.train.trainer as trainer

    make_mural_folder(tmp_path / "m", sizes=((96, 96),) * 4, suffixes=(".png",) * 4)
    cfg = tiny(phases=[{"name": "mixed", "lr": 1e-3, "epochs": 1, "data": "both"}])
    r = build_run(cfg, tmp_path / "m")
    sets = trainer._by_source(r["train_set"])
    assert len(sets["both"]) == len(r["train_set"]["main"]) + len(r["train_set"]["procedural"])
    result = fit(r["model"], r["loss"], r["train_set"], r["val_set"], r["phases"], r["train"], tmp_path / "run",
                 config={"model": cfg["model"]})
    assert result["steps"] == len(sets["both"]) // cfg["train"]["batch_size"]
    with pytest.raises(ValueError, match="'main', 'procedural' or 'both'"):
        Phase("p", lr=1e-3, epochs=1, data="real")


# --- checkpoints and resume ------------------------------------------------------------------------------

def test_checkpoints_hold_everything_and_rebuild_the_model(tmp_path):
    cfg = tiny()
    r, result = run(cfg, tmp_path)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert {"model", "optimizer", "scheduler", "scaler", "config", "progress", "rng"} <= set(ckpt)
    assert ckpt["progress"]["step"] == result["steps"] and ckpt["progress"]["global_epoch"] == 2
    model, _ = load_model(tmp_path / "best.pt")
    x, m = torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 32)
    best_state = load_checkpoint(tmp_path / "best.pt")["model"]
    assert all(torch.equal(best_state[k], v) for k, v in model.state_dict().items())
    assert model(x, m).shape == x.shape
    assert (tmp_path / "metrics.csv").exists() and (tmp_path / "metrics.json").exists()
    assert any(p.name.startswith("events") for p in (tmp_path / "tensorboard").iterdir())


def test_existing_run_is_not_overwritten(tmp_path):
    cfg = tiny()
    run(cfg, tmp_path)
    with pytest.raises(FileExistsError, match="resume"):
        run(cfg, tmp_path)


def test_resume_is_bit_for_bit(tmp_path, monkeypatch):
    """2 epochs straight == 1 epoch, interrupted, resumed, 1 more epoch (deterministic, CPU): same weights,
    optimiser state and progress, bit for bit."""
    cfg = tiny(train__deterministic=True, phases=[{"name": "a", "lr": 1e-3, "epochs": 2}])
    run(cfg, tmp_path / "straight")
    run_interrupted_after_epoch_1(cfg, tmp_path / "resumed", monkeypatch)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["progress"]["global_epoch"] == 1
    run(cfg, tmp_path / "resumed", resume=True)

    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "last.pt")
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed["model"][k]), k
    for i, state in straight["optimizer"]["state"].items():
        assert torch.equal(state["exp_avg_sq"], resumed["optimizer"]["state"][i]["exp_avg_sq"])
    assert straight["progress"] == resumed["progress"]


def test_sigkilled_run_resumes(tmp_path):
    """A CLI run killed with SIGKILL mid-training continues with --resume and finishes all its epochs."""
    config = tmp_path / "cfg.yaml"
    import yaml
    cfg = tiny(phases=[{"name": "a", "lr": 1e-3, "epochs": 6}], train__progress_bar=False)
    cfg["data"]["n_murals"] = 8
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "murallab.cli", "train", "--config", str(config), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (out / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    epoch_at_kill = load_checkpoint(out / "last.pt")["progress"]["global_epoch"]
    assert 1 <= epoch_at_kill < 6
    done = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stdout + done.stderr
    assert load_checkpoint(out / "last.pt")["progress"]["global_epoch"] == 6


# --- NaN -------------------------------------------------------------------------------------------------

def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path):
    cfg = tiny(phases=[{"name": "a", "lr": 1e-3, "epochs": 3}])
    r = build_run(cfg)
    calls = {"n": 0}
    inner = r["loss"]

    class PoisonAfterOneEpoch(nn.Module):
        def forward(self, out, image, mask):
            calls["n"] += 1
            total, terms = inner(out, image, mask)
            if calls["n"] > 5:  # one epoch (16 patches: 4 steps) + 1 validation batch, then NaN
                total = total * float("nan")
                terms = dict(terms, hole=float("nan"))
            return total, terms

    with pytest.raises(NonFiniteLossError, match=r"step 5 .*hole=nan.*last\.pt"):
        fit(r["model"], PoisonAfterOneEpoch(), r["train_set"], r["val_set"], r["phases"], r["train"], tmp_path,
            config={"model": cfg["model"]})
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["progress"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_train_step_is_forward_backward_clip_adam_and_refuses_a_nan_loss():
    """train_step against the same step written out by hand on a copy of the network; a NaN loss leaves the
    weights alone."""
    torch.manual_seed(0)
    model = PConvUNet(layers=2, base=4)
    twin = PConvUNet(layers=2, base=4)
    twin.load_state_dict(model.state_dict())
    image = torch.rand(4, 3, 32, 32)
    mask = (torch.rand(4, 1, 32, 32) > 0.3).float()
    batch = {"image": image, "mask": mask, "masked": image * mask}

    def l1(out, target, m):
        return (out[0] - target).abs().mean() * 1e3, {"l1": 0.0}  # large: the clipping acts
    opt, twin_opt = torch.optim.Adam(model.parameters(), lr=1e-2), torch.optim.Adam(twin.parameters(), lr=1e-2)
    train_step(model, l1, batch, opt, grad_clip=0.5)
    loss = (twin(image * mask, mask)[0] - image).abs().mean() * 1e3
    loss.backward()
    assert torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.5) > 0.5
    twin_opt.step()
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)

    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    with pytest.raises(NonFiniteLossError, match="the loss is nan; terms: l1=nan") as caught:
        train_step(model, lambda out, t, m: (out[0].mean() * float("nan"), {"l1": float("nan")}), batch, opt)
    assert math.isnan(caught.value.loss)
    assert all(torch.equal(before[k], v) for k, v in model.named_parameters())  # (BN statistics do move)


@pytest.mark.parametrize("model", [{"name": "PConvUNet", "layers": 2, "base": 4},
                                   {"name": "UNet", "layers": 2, "base": 4, "refine": True},
                                   {"name": "FFCUNet", "base": 4, "blocks": 1}])
def test_channels_last_trains_the_same_network(tmp_path, model):
    """NHWC weights and batches (TrainConfig.channels_last) are a memory layout, not another computation: the same
    losses and weights as NCHW, to float tolerance (other kernels)."""
    runs = {}
    for flag in (False, True):
        cfg = tiny(model=model, train__channels_last=flag)
        r, result = run(cfg, tmp_path / str(flag))
        conv = next(m for m in r["model"].modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == flag
        runs[flag] = r["model"].state_dict(), result["history"]["train/loss"]
    (nchw, loss_a), (nhwc, loss_b) = runs[False], runs[True]
    assert [s for s, _ in loss_a] == [s for s, _ in loss_b]
    torch.testing.assert_close([v for _, v in loss_b], [v for _, v in loss_a], rtol=1e-3, atol=1e-5)
    for k in nchw:
        torch.testing.assert_close(nhwc[k].contiguous(), nchw[k], rtol=1e-3, atol=1e-4, msg=k)


# --- configs ----------------------------------------------------------------------------------------------

def test_config_typos_are_errors():
    with pytest.raises(ValueError, match="unknown train settings"):
        load_config(dict(TINY, train={"batch_sise": 4}))
    with pytest.raises(ValueError, match="unknown phase settings"):
        load_config(dict(TINY, phases=[{"name": "a", "lr": 1e-3, "epochs": 1, "freeze": "encoder"}]))
    with pytest.raises(ValueError, match="unknown data settings"):
        load_config(dict(TINY, data={"patchsize": 32}))
    with pytest.raises(ValueError, match="unknown config sections"):
        load_config(dict(TINY, optimiser={}))


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_preset_loads_and_builds(path):
    cfg = load_config(path)
    assert cfg["phases"] and cfg["model"]["name"]
    cfg["data"].update(n_murals=2, mural_size=128, patch_size=64, patches_per_image=1)
    if "weights" in cfg["loss"]:
        cfg["loss"]["weights"] = None  # no ImageNet file offline
    if (cfg.get("init") or "").startswith("pretrained:"):  # the kit's shipped weights
        pass
    elif cfg.get("init"):  # a checkpoint from an earlier run: its absence is a clear error
        with pytest.raises(FileNotFoundError, match=cfg["init"]):
            build_run(cfg)
        cfg["init"] = None
    r = build_run(cfg)
    assert len(r["train_set"]) > 0


# --- DDP ---------------------------------------------------------------------------------------------------

def test_ddp_two_cpu_processes(tmp_path):
    config = tmp_path / "cfg.yaml"
    import yaml
    config.write_text(yaml.safe_dump(tiny(phases=[{"name": "a", "lr": 1e-3, "epochs": 1}])))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
           "-m", "murallab.cli", "train", "--config", str(config), "--out", str(tmp_path / "run"), "--device", "cpu"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    # 4 murals x 4 patches = 16 training patches, 8 per rank, batch 4: 2 steps per rank (1 step alone: 4)
    assert ckpt["progress"]["step"] == 2
    assert (tmp_path / "run" / "metrics.json").exists()


# --- resume with another network, divergence, a failed run's folder ----------------------------------------

def one_epoch(**model) -> dict:
    return tiny(phases=[{"name": "a", "lr": 1e-3, "epochs": 2}],
                **({"model": {"name": "PConvUNet", "layers": 2, "base": 4, **model}} if model else {}))


def test_resume_with_another_model_is_a_one_line_error(tmp_path):
    """base 4, then resume with base 8: not load_state_dict's multi-line size-mismatch RuntimeError but one line
    that names last.pt, both model settings and the first weight that differs."""
    cfg = one_epoch()
    cfg["phases"][0]["epochs"] = 1
    run(cfg, tmp_path)
    with pytest.raises(ValueError) as info:
        run(one_epoch(base=8), tmp_path, resume=True)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'last.pt'} was trained with model {{name: PConvUNet, layers: 2, base: 4}};"
                              f" this config asks for {{name: PConvUNet, layers: 2, base: 8}} (enc.0.conv.weight is "
                              f"(4, 3, 7, 7) there, (8, 3, 7, 7) here): resume with the same model settings")
    with pytest.raises(ValueError, match=r"last\.pt was trained with model .*base: 4.* \(enc\.0\.conv\.weight is"):
        r = build_run(one_epoch(base=8))  # no config["model"] given to fit: the weights alone tell
        fit(r["model"], r["loss"], r["train_set"], r["val_set"], r["phases"], r["train"], tmp_path, resume=True)
    # a setting that changes no weight's shape is refused too ...
    with pytest.raises(ValueError, match=r"this config asks for \{.*upsample: bilinear\}: resume with the same"):
        run(one_epoch(upsample="bilinear"), tmp_path, resume=True)
    # ... and the same network, spelled out with a default, resumes (its one phase was over: nothing left to do)
    same = one_epoch(in_channels=3)
    same["phases"][0]["epochs"] = 1
    _, result = run(same, tmp_path, resume=True)
    assert result["epochs"] == 1 and result["steps"] == 4


def test_resume_with_other_phases_is_a_one_line_error(tmp_path):
    """A run planned for 1 epoch, resumed as 2: its cosine schedule ended at step 4, so the learning rate would climb
    again; refused in one line that names the phase and the setting."""
    cfg = one_epoch()
    cfg["phases"][0]["epochs"] = 1
    run(cfg, tmp_path)
    with pytest.raises(ValueError) as info:
        run(one_epoch(), tmp_path, resume=True)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'last.pt'} was trained with other phases (phase 1 ('a') has epochs 1 "
                              f"there, 2 here): resume with the same phases")
    longer = one_epoch()
    longer["phases"].append({**longer["phases"][0], "name": "b"})
    with pytest.raises(ValueError, match=r"other phases \(1 phases there, 2 here\)"):
        run(longer, tmp_path, resume=True)


def test_a_run_saved_before_a_phase_setting_existed_resumes(tmp_path, monkeypatch):
    """A checkpoint whose phases lack a key (``minutes``) resumes under the key's default."""
    from murallab.train import save_checkpoint
    cfg = one_epoch()
    run_interrupted_after_epoch_1(cfg, tmp_path, monkeypatch)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    for phase in ckpt["config"]["phases"]:
        del phase["minutes"]
    save_checkpoint(tmp_path / "last.pt", **ckpt)
    _, result = run(cfg, tmp_path, resume=True)
    assert result["epochs"] == 2


def test_a_diverging_run_stops_with_an_error_naming_the_kept_checkpoints(tmp_path):
    """lr 1e6: the validation loss jumps to ~1e14 from ~1 at step 1. Training stops with DivergedError (not a warning
    and a normal return), in one line naming best.pt, its epoch and score, and last.pt, both on disk."""
    cfg = tiny(phases=[{"name": "a", "lr": 1e6, "epochs": 2}])
    with pytest.raises(DivergedError) as info:
        run(cfg, tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("the run diverged: validation loss ") and "after epoch 1 of phase 'a' is " in message
    best = load_checkpoint(tmp_path / "best.pt")["progress"]
    last = load_checkpoint(tmp_path / "last.pt")["progress"]
    assert last["step"] == best["step"] == 4  # one epoch of 4 steps, then it stopped
    first_train_loss = load_checkpoint(tmp_path / "last.pt")["progress"]["first_loss"]
    assert last["best_val_loss"] > 100 * first_train_loss
    assert (f"{tmp_path / 'best.pt'} keeps the best epoch by psnr (epoch {best['best_epoch']} of the run, "
            f"psnr {best['best']:.4g})") in message
    assert f"{tmp_path / 'last.pt'} holds the latest weights" in message


def test_divergence_is_100x_the_best_validation_loss(tmp_path, monkeypatch):
    """Scripted validation losses: 98x the best one so far is not divergence, 102x is."""
    import murallab.train.trainer as trainer

    def script(losses, psnrs):
        values = iter(zip(losses, psnrs))
        monkeypatch.setattr(trainer, "validate", lambda *a, **k: dict(zip(("loss", "psnr"), next(values))))
        cfg = tiny(phases=[{"name": "a", "lr": 1e-3, "epochs": len(losses)}])
        return run(cfg, tmp_path / str(len(losses)))[1]

    assert script([1.0, 0.5, 49.0], [20.0, 22.0, 10.0])["epochs"] == 3
    with pytest.raises(DivergedError) as info:
        script([1.0, 0.5, 49.0, 51.0, 0.4, 1000.0], [20.0, 22.0, 10.0, 9.0, 23.0, 5.0])
    assert "after epoch 4 of phase 'a' is 102x the best validation loss (0.5)" in str(info.value)
    assert "best.pt keeps the best epoch by psnr (epoch 2 of the run, psnr 22)" in str(info.value)
    assert "which diverged too" not in str(info.value)
    assert load_checkpoint(tmp_path / "6" / "last.pt")["progress"]["global_epoch"] == 4


@pytest.mark.parametrize("resume", [False, True])
def test_a_failed_run_folder_starts_clean(tmp_path, resume):
    """A run that crashed in its first epoch left metrics.csv and TensorBoard events but no last.pt. Running again
    (with or without resume) starts a new run whose logs hold only its own steps, not appended to the crashed run's
    metrics.csv; the kit's log files from the crashed run go, the user's files stay."""
    import csv
    import json

    cfg = tiny(phases=[{"name": "a", "lr": 1e-3, "epochs": 1}])
    r = build_run(cfg)
    calls = {"n": 0}

    class CrashAtStep3(nn.Module):
        def forward(self, out, image, mask):
            calls["n"] += 1
            if calls["n"] == 3:
                raise MemoryError("simulated crash in epoch 1")
            return r["loss"](out, image, mask)

    with pytest.raises(MemoryError):
        fit(r["model"], CrashAtStep3(), r["train_set"], r["val_set"], r["phases"], r["train"], tmp_path,
            config={"model": cfg["model"]})
    old_events = sorted((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert not (tmp_path / "last.pt").exists() and (tmp_path / "metrics.csv").exists() and old_events
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "tensorboard" / "notes.txt").write_text("mine too")

    _, result = run(cfg, tmp_path, resume=resume)
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "tag", "value"] and rows.count(["step", "tag", "value"]) == 1
    assert [int(s) for s, tag, _ in rows[1:] if tag == "train/loss"] == [1, 2, 3, 4]
    assert json.loads((tmp_path / "metrics.json").read_text()) == result["history"]
    assert [s for s, _ in result["history"]["train/loss"]] == [1, 2, 3, 4]
    assert not any(p.exists() for p in old_events)
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "tensorboard" / "notes.txt").read_text() == "mine too"


def test_amp_auto_picks_bf16_only_where_the_hardware_runs_it(monkeypatch):
    from murallab.train.trainer import TrainConfig, resolve_amp

    for explicit in (None, "bf16", "fp16"):
        assert resolve_amp(explicit, "cpu") == explicit  # only "auto" is resolved
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert resolve_amp("auto", "cpu") == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert resolve_amp("auto", "cpu") is None  # emulated bf16 measured 3.5x slower than fp32
    monkeypatch.undo()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # Linux: the kernel's own word on this CPU
        assert (resolve_amp("auto", "cpu") == "bf16") == (" amx_tile" in cpuinfo.read_text())
    assert TrainConfig(amp="auto").amp == "auto"
    with pytest.raises(ValueError, match="amp must be None, 'bf16', 'fp16' or 'auto', got 'bfloat16'"):
        TrainConfig(amp="bfloat16")
