"""DiffusionRestorer (forward for the trainer, sample for restoration), DiffusionLoss, and the restorer through the
trainer, ``murallab.restore`` and ``murallab restore``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
import torch.nn.functional as F
from torch import nn

from murallab import cli
from murallab.data import random_walk_mask, random_walk_masks
from murallab.diffusion import SAMPLERS, DiffusionRestorer, ddim_sample
from murallab.diffusion.samplers import timesteps
from murallab.losses import DiffusionLoss

KEYS = {"pred", "target", "mask", "x0_hat", "x0"}
TINY = dict(base=8, mults=(1, 2))


def _model(scales, seed=0, **kw) -> DiffusionRestorer:
    torch.manual_seed(seed)
    return DiffusionRestorer(scales=scales, **{**TINY, **kw}).eval()


@pytest.fixture(scope="module")
def one_scale():
    return _model([16])


@pytest.fixture(scope="module")
def two_scales():
    return _model([8, 16])


def _batch(b=2, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, size, size, generator=g) * 0.9 + 0.05
    mask = random_walk_masks(b, size, hole_ratio=(0.2, 0.4), seed=seed)
    return image, mask


def _known(out, ref, mask):
    """The mask == 1 pixels of ``out`` and ``ref`` (all channels)."""
    keep = mask.expand_as(ref) == 1
    return out[keep], ref[keep]


def _coarse_mask(mask, size):
    """1 where every fine pixel below a coarse one is known (computed with a reshape, not a pooling)."""
    b, _, h, w = mask.shape
    f = h // size
    return mask.reshape(b, 1, size, f, size, f).amin(dim=(3, 5))


# --- forward ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scales", [[16], [8, 16]])
def test_eval_forward_is_repeatable_and_has_one_dict_per_scale(scales):
    model = _model(scales, cond_drop=0.0)
    image, mask = _batch(b=3)
    with torch.no_grad():
        first, second = model(image, mask), model(image, mask)
    assert isinstance(first, list) and len(first) == len(scales)
    for a, b, s in zip(first, second, scales):
        assert set(a) == KEYS
        for k in KEYS:
            assert a[k].shape == ((3, 1, s, s) if k == "mask" else (3, 3, s, s)), (s, k)
            assert torch.equal(a[k], b[k]), (s, k)  # the same computation twice, from the same fixed noise
        # x0: the image at this scale (area average) in [-1, 1]
        pooled = image.reshape(3, 3, s, 16 // s, s, 16 // s).mean(dim=(3, 5))
        assert torch.allclose(a["x0"], pooled * 2 - 1, atol=1e-6)
        assert torch.equal(a["mask"], _coarse_mask(mask, s))
        # an x0-model (the default): the target is x0 itself and the one-step estimate is the prediction
        assert torch.equal(a["target"], a["x0"]) and torch.equal(a["x0_hat"], a["pred"])
    assert torch.equal(first[-1]["mask"], mask)


def test_train_forward_draws_new_steps_and_noise():
    model = _model([16], cond_drop=0.0).train()
    image, mask = _batch()
    torch.manual_seed(1)
    a = model(image, mask)[0]["pred"]
    b = model(image, mask)[0]["pred"]
    torch.manual_seed(1)
    c = model(image, mask)[0]["pred"]
    assert not torch.equal(a, b) and torch.equal(a, c)  # from the global RNG, which the trainer seeds and saves


class Recorder(nn.Module):
    """Wraps a scale's network and keeps what it was called with."""

    def __init__(self, net):
        super().__init__()
        self.net, self.prediction, self.calls = net, net.prediction, []

    def forward(self, x_t, t, cond=None):
        self.calls.append((x_t, t, cond))
        return self.net(x_t, t, cond)


def _recording(model):
    model.nets = nn.ModuleList(Recorder(net) for net in model.nets)
    return model


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_forward_noises_the_image_and_targets_the_prediction(prediction):
    """What the network saw (x_t, t) against the returned target, x0 and one-step estimate, with ᾱ_t computed here
    from the betas; only well-conditioned relations (no division by sqrt(ᾱ) or sqrt(1 - ᾱ))."""
    model = _recording(_model([8, 16], prediction=prediction, cond_drop=0.0))
    image, mask = _batch(b=4, seed=1)
    with torch.no_grad():
        output = model(image, mask)
    for rec, o in zip(model.nets, output):
        x_t, t, _ = rec.calls[-1]
        a = torch.tensor([float(torch.prod(1 - model.schedule.betas[: ti + 1])) for ti in t.tolist()]
                         ).view(-1, 1, 1, 1).float()
        assert t.shape == (4,) and bool(((t >= 0) & (t < model.schedule.num_steps)).all())
        if prediction == "eps":  # the target is the noise: x_t = sqrt(a) x0 + sqrt(1 - a) ε
            assert torch.allclose(x_t, a.sqrt() * o["x0"] + (1 - a).sqrt() * o["target"], atol=1e-5)
            assert 0.85 < o["target"].std().item() < 1.15
            assert torch.allclose(o["x0_hat"] * a.sqrt() + (1 - a).sqrt() * o["pred"], x_t, atol=1e-5)
        elif prediction == "v":  # x0 = sqrt(a) x_t - sqrt(1 - a) v
            assert torch.allclose(o["x0"], a.sqrt() * x_t - (1 - a).sqrt() * o["target"], atol=1e-5)
            assert torch.allclose(o["x0_hat"], a.sqrt() * x_t - (1 - a).sqrt() * o["pred"], atol=1e-5)
        else:
            assert torch.equal(o["target"], o["x0"]) and torch.equal(o["x0_hat"], o["pred"])
        assert not torch.allclose(x_t, o["x0"], atol=1e-3)  # it was noised


@pytest.mark.parametrize("scales", [[16], [8, 16]])
def test_the_condition_holds_no_hole_pixel(scales):
    """Changing what the holes hold changes no condition channel, except (teacher forcing, by design) the true
    coarser image of a finer scale. One scale: the condition is [masked image in [-1, 1]; mask]."""
    image, mask = _batch(b=3, seed=2)
    other = torch.where(mask == 1, image, torch.rand_like(image))
    conds = []
    for img in (image, other):
        model = _recording(_model(scales, cond_drop=0.0))
        with torch.no_grad():
            model(img, mask)
        conds.append([rec.calls[-1][2] for rec in model.nets])
    for i, (c, d) in enumerate(zip(*conds)):
        if len(scales) == 1:
            assert c.shape == (3, 4, 16, 16)
            assert torch.equal(c, d)
            assert torch.equal(c[:, 3:], mask)
            assert torch.allclose(c[:, :3], (image * 2 - 1) * mask, atol=1e-6)
        else:
            assert c.shape == (3, 8, scales[i], scales[i])
            assert torch.equal(c[:, 3:], d[:, 3:]), i
            if i == 0:
                assert torch.equal(c[:, :3], torch.zeros_like(c[:, :3]))  # no coarser result at the coarsest
            else:
                assert not torch.equal(c[:, :3], d[:, :3])  # the true coarse image, holes included


def test_forward_rejects_a_patch_of_another_size(one_scale):
    image, mask = _batch(size=32)
    with pytest.raises(ValueError, match="patch_size to 16"):
        one_scale(image, mask)


@pytest.mark.parametrize("cond_drop,low,high", [(0.5, 0.4, 0.6), (0.0, 0.0, 0.0)])
def test_cond_drop_hides_the_mask_of_a_fraction_of_samples(cond_drop, low, high):
    model = _model([16], cond_drop=cond_drop).train()
    n = 400
    image, mask = torch.rand(n, 3, 16, 16), torch.ones(n, 1, 16, 16)
    torch.manual_seed(0)
    with torch.no_grad():
        m = model(image, mask)[0]["mask"]
    dropped = (m == 0).flatten(1).all(1)
    kept = (m == 1).flatten(1).all(1)
    assert bool((dropped | kept).all())  # a sample's mask is hidden entirely or kept entirely
    assert low <= dropped.float().mean().item() <= high, dropped.float().mean().item()


@pytest.mark.parametrize("scales,sampler", [([16], "ddim"), ([16], "ddpm"), ([8, 16], "multiscale")])
def test_an_untrained_refining_model_restores_as_push_pull(scales, sampler):
    """refine=True: the condition carries the push-pull fill and the network's correction starts at zero, so every
    sampler's x̂_0 is the fill at every step and the result is push-pull's (up to the schedule's arithmetic)."""
    from murallab.classical import push_pull

    model = _model(scales, refine=True)
    image, mask = _batch(2, 16, seed=3)
    out = model.sample(image * mask, mask, sampler=sampler, steps=4, seed=0)
    assert torch.allclose(out, push_pull(image * mask, mask), atol=1e-4)
    assert torch.allclose(model.fill(image * mask, mask), push_pull(image * mask, mask), atol=1e-6)
    assert model.condition(image, torch.zeros_like(mask)).abs().sum() == 0  # nothing known: all zeros


@pytest.mark.parametrize("scales,sampler", [([16], "ddim"), ([16, 32], "multiscale")])  # (the FFCUNet needs 16 px)
def test_an_untrained_model_refining_a_restorer_restores_as_that_restorer(scales, sampler):
    """refine="pretrained:restorer" (through the registry, which copies that restorer's weights in): the
    condition's holes hold that network's fill, so the untrained diffusion model (zero correction) returns the
    restorer's own composite, run here directly."""
    from murallab.classical import push_pull
    from murallab.models import build_model, load_pretrained

    torch.manual_seed(0)
    model = build_model("DiffusionRestorer", scales=scales, refine="pretrained:restorer", **TINY).eval()
    image, mask = _batch(2, scales[-1], seed=3)
    out = model.sample(image * mask, mask, sampler=sampler, steps=3, seed=0)
    restorer = load_pretrained("restorer")
    with torch.no_grad():
        want = mask * image + (1 - mask) * restorer(image * mask, mask).clamp(0, 1)
    assert torch.allclose(out, want, atol=1e-4)
    assert torch.allclose(model.fill(image * mask, mask), want, atol=1e-6)
    assert (out - push_pull(image * mask, mask)).abs().max() > 1e-2  # the restorer's fill, not push-pull's
    assert model.condition(image, torch.zeros_like(mask)).abs().sum() == 0  # nothing known: all zeros


def test_the_refined_restorer_stays_frozen_in_training(tmp_path):
    """Trained through the trainer, the fill network gets no gradient, keeps its weights and BatchNorm statistics
    (it stays in eval mode), and is saved with the model, so the checkpoint reloads without it."""
    from murallab.train import build_run, load_config, load_model
    from murallab.train.trainer import fit

    path = tmp_path / "refine_restorer.yaml"
    path.write_text(CONFIG.replace("mults: [1, 2]}", "mults: [1, 2], refine: 'pretrained:restorer'}"))
    cfg = load_config(path)
    run = build_run(cfg)
    model = run["model"]
    before = {k: v.clone() for k, v in model.fill_net.state_dict().items()}
    model.train()
    assert model.training and not model.fill_net.training
    result = fit(model, run["loss"], run["train_set"], run["val_set"], run["phases"], run["train"],
                 tmp_path / "run", config={k: cfg[k] for k in ("name", "model", "loss", "data")})
    assert result["steps"] >= 2
    after = model.fill_net.state_dict()
    assert all(torch.equal(before[k], after[k].cpu()) for k in before), "the frozen restorer changed"
    assert all(p.grad is None for p in model.fill_net.parameters())
    reloaded, _ = load_model(result["best_checkpoint"])
    assert any(k.startswith("fill_net.") for k in reloaded.state_dict())
    image, mask = _batch(2, 16, seed=4)
    model.eval()
    assert torch.allclose(reloaded.sample(image * mask, mask, steps=3), model.sample(image * mask, mask, steps=3),
                          atol=1e-5)


def test_refine_with_a_blind_model_is_rejected():
    from murallab.models import build_model

    with pytest.raises(ValueError, match="mask-guided restorer"):
        build_model("DiffusionRestorer", scales=[16], refine="pretrained:detector", **TINY)
    with pytest.raises(ValueError, match="mask-guided network of murallab.nn"):
        DiffusionRestorer(scales=[16], refine={"name": "DualDecoderUNet", "base": 8}, **TINY)
    with pytest.raises(ValueError, match="names a checkpoint: build the model with murallab.models.build_model"):
        DiffusionRestorer(scales=[16], refine="pretrained:restorer", **TINY)  # no file is read in __init__


def test_the_frozen_restorer_comes_from_the_state_dict_alone(tmp_path):
    """A DiffusionRestorer refining {"name": "FFCUNet", ...} builds that network with untrained weights; its
    trained ones come back with load_state_dict, and the rebuilt model samples exactly as the original."""
    from murallab.models import build_model

    torch.manual_seed(0)
    trained = build_model("DiffusionRestorer", scales=[16], refine="pretrained:restorer-small", **TINY).eval()
    spec = {"name": "FFCUNet", "base": 24, "blocks": 4}
    torch.manual_seed(1)
    rebuilt = DiffusionRestorer(scales=[16], refine=spec, **TINY).eval()
    assert not all(torch.equal(a, b) for a, b in zip(rebuilt.fill_net.state_dict().values(),
                                                     trained.fill_net.state_dict().values()))
    rebuilt.load_state_dict(trained.state_dict())
    image, mask = _batch(2, 16, seed=5)
    torch.testing.assert_close(rebuilt.sample(image * mask, mask, steps=2), trained.sample(image * mask, mask, steps=2),
                               rtol=0, atol=0)


def test_coarse_steps_conditions_the_fine_scale_on_the_coarse_network_s_own_sample():
    """Validation: the 16 px network's coarse channels are the 8 px network's DDIM sample in ``coarse_steps`` calls
    (seed 0, known pixels pasted), sampled here with ``ddim_sample`` directly, not the true image (teacher forcing)."""
    model = _recording(_model([8, 16], cond_drop=0.0, coarse_steps=2))
    image, mask = _batch(b=3)
    with torch.no_grad():
        model(image, mask)
    coarse_net, fine_net = model.nets
    assert len(coarse_net.calls) == 2 + 1 and len(fine_net.calls) == 1  # the sample's two calls, then the step
    k, m = F.adaptive_avg_pool2d(image, 8), _coarse_mask(mask, 8)
    own = ddim_sample(coarse_net.net, model.schedule, known=k, mask=m, cond=model.condition(k, m), steps=2, seed=0,
                      paste=True)
    seen = fine_net.calls[-1][2][:, :3]
    up = F.interpolate(own, size=16, mode="bilinear", align_corners=False) * 2 - 1
    assert torch.allclose(seen, up, atol=1e-5)
    truth = F.interpolate(k, size=16, mode="bilinear", align_corners=False) * 2 - 1
    assert (seen - truth).abs().max() > 0.1


def test_coarse_steps_draws_one_to_coarse_steps_calls_per_training_batch():
    model = _recording(_model([8, 16], cond_drop=0.0, coarse_steps=3)).train()
    image, mask = _batch(b=2)
    counts = []
    torch.manual_seed(0)
    for _ in range(12):
        before = len(model.nets[0].calls)
        with torch.no_grad():
            model(image, mask)
        counts.append(len(model.nets[0].calls) - before - 1)
    assert set(counts) <= {1, 2, 3} and len(set(counts)) > 1, counts


def test_an_unconditional_model_never_sees_the_mask_and_restores_only_with_repaint():
    model = _recording(_model([16], cond_drop=1.0))
    image, mask = _batch()
    with torch.no_grad():
        out = model(image, mask)
    assert torch.count_nonzero(out[0]["mask"]) == 0  # the loss covers the whole image
    assert torch.count_nonzero(model.nets[0].calls[-1][2]) == 0  # and the network's condition is all zeros
    known = image * mask
    a = model.sample(known, mask, steps=4, jump_length=2, jump_n_sample=2, seed=3)
    b = model.sample(known, mask, sampler="repaint", steps=4, jump_length=2, jump_n_sample=2, seed=3)
    assert torch.equal(a, b) and torch.equal(a * mask, known * mask)
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(known, mask, sampler="ddim", steps=2)


def test_refine_needs_x0_prediction():
    with pytest.raises(ValueError, match="prediction='x0'"):
        DiffusionRestorer(scales=[16], refine=True, prediction="eps", **TINY)


def test_constructor_rejects_bad_arguments():
    for kw, words in ((dict(scales=[15]), "multiple of 2"), (dict(scales=[16, 8]), "increasing"),
                      (dict(scales=[8, 12]), "increasing"), (dict(cond_drop=1.5), "cond_drop"),
                      (dict(cond_drop=1.0, refine=True), "unconditional"), (dict(coarse_steps=2), "coarse_steps"),
                      (dict(schedule="quadratic"), "cosine"), (dict(prediction="noise"), "prediction"),
                      (dict(input_noise=1.5), "input_noise"), (dict(input_noise=-0.1), "input_noise")):
        with pytest.raises(ValueError, match=words):
            DiffusionRestorer(**{**dict(scales=[16]), **TINY, **kw})


# --- DiffusionLoss ---------------------------------------------------------------------------------------------

def _by_hand(output, term):
    """The mean squared error of one term over its pixels and channels, per scale (boolean selection), then averaged
    over the scales."""
    values = []
    for o in output:
        if term == "cycle":
            diff, where = o["x0_hat"].clamp(-1, 1) - o["x0"], o["mask"] == 1
        else:
            diff, where = o["pred"] - o["target"], (o["mask"] == 0) if term == "hole" else (o["mask"] == 1)
        sel = diff[where.expand_as(diff)]
        values.append((sel ** 2).mean() if sel.numel() else torch.zeros(()))
    return sum(values) / len(values)


@pytest.mark.parametrize("scales", [[16], [8, 16]])
def test_diffusion_loss_terms_by_hand(scales):
    model = _model(scales, prediction="v", cond_drop=0.5)
    image, mask = _batch(b=8, seed=2)
    model.train()
    torch.manual_seed(0)
    output = model(image, mask)
    dropped = (output[-1]["mask"] == 0).flatten(1).all(1)
    assert 0 < int(dropped.sum()) < 8  # both kinds of sample: a hidden mask makes the whole sample a hole
    total, terms = DiffusionLoss()(output, image, mask)
    assert set(terms) == {"hole", "valid", "cycle"}
    hole = _by_hand(output, "hole")
    assert torch.allclose(terms["hole"], hole, rtol=1e-5, atol=1e-7)
    assert torch.allclose(total, hole, rtol=1e-5, atol=1e-7)
    assert terms["valid"].item() == 0 and terms["cycle"].item() == 0  # weighted 0 by default
    total.backward()  # the loss reaches the networks
    assert all(p.grad is not None for p in model.nets[-1].out.parameters())

    weights = {"hole": 0.5, "valid": 2.0, "cycle": 3.0}
    total, terms = DiffusionLoss(**weights)(output)
    for name, w in weights.items():
        want = w * _by_hand(output, name)
        assert torch.allclose(terms[name], want, rtol=1e-5, atol=1e-7), name
    assert torch.allclose(total, sum(terms.values()), rtol=1e-6)
    assert terms["cycle"] > 0 and terms["valid"] > 0


def test_diffusion_loss_with_no_hole_is_zero_not_nan():
    model = _model([16], cond_drop=0.0)
    image = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        output = model(image, torch.ones(2, 1, 16, 16))
    total, terms = DiffusionLoss(hole=1, valid=1)(output)
    assert terms["hole"].item() == 0 and math.isfinite(total.item())
    assert torch.allclose(terms["valid"], _by_hand(output, "valid"), rtol=1e-5)


def test_diffusion_loss_rejects_other_outputs():
    image, mask = _batch()
    loss = DiffusionLoss()
    for wrong in (image, [], (image, mask), [image]):
        with pytest.raises(TypeError, match="DiffusionRestorer"):
            loss(wrong, image, mask)


# --- sample ----------------------------------------------------------------------------------------------------

SAMPLE_ARGS = {"ddim": dict(steps=3), "ddpm": dict(steps=3), "multiscale": dict(steps=3),
               "repaint": dict(steps=4, jump_length=2, jump_n_sample=2)}


def _model_for(sampler, one_scale, two_scales):
    return two_scales if sampler == "multiscale" else one_scale


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sample_keeps_known_pixels_and_repeats_with_a_seed(sampler, one_scale, two_scales):
    model = _model_for(sampler, one_scale, two_scales)
    image, mask = _batch(seed=3)
    out = model.sample(image, mask, sampler=sampler, seed=7, **SAMPLE_ARGS[sampler])
    assert out.shape == image.shape and out.dtype == image.dtype
    assert torch.equal(*_known(out, image, mask))
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, image)  # the holes were filled by the sampler
    again = model.sample(image, mask, sampler=sampler, seed=7, **SAMPLE_ARGS[sampler])
    assert torch.equal(out, again)


def test_ddpm_with_another_seed_differs(one_scale):
    image, mask = _batch(seed=4)
    a = one_scale.sample(image, mask, sampler="ddpm", steps=3, seed=0)
    b = one_scale.sample(image, mask, sampler="ddpm", steps=3, seed=1)
    holes = mask.expand_as(a) == 0
    assert (a[holes] - b[holes]).abs().max() > 1e-3
    assert torch.equal(a[~holes], b[~holes])


def test_sample_does_not_read_hole_pixels(one_scale):
    """What the hole pixels of the input hold does not change the result (the condition never holds one)."""
    image, mask = _batch(seed=5)
    other = torch.where(mask == 1, image, torch.rand_like(image))
    for sampler in ("ddim", "repaint"):
        a = one_scale.sample(image, mask, sampler=sampler, **SAMPLE_ARGS[sampler])
        b = one_scale.sample(other, mask, sampler=sampler, **SAMPLE_ARGS[sampler])
        assert torch.allclose(a, b, atol=1e-6), sampler


def test_sampler_and_model_must_match(one_scale, two_scales):
    image, mask = _batch()
    with pytest.raises(ValueError, match="multi-scale model"):
        one_scale.sample(image, mask, sampler="multiscale", steps=2)
    for sampler in ("ddim", "ddpm", "repaint"):
        with pytest.raises(ValueError, match="one-scale model"):
            two_scales.sample(image, mask, sampler=sampler, steps=2)
    with pytest.raises(ValueError, match="ddim, ddpm, repaint, multiscale"):
        one_scale.sample(image, mask, sampler="euler", steps=2)


@pytest.mark.parametrize("sampler", ["ddim", "repaint"])
def test_one_scale_sample_pads_to_its_stride(sampler):
    model = _model([16], mults=(1, 2, 2))  # stride 4
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 18, 22, generator=g)
    mask = torch.stack([random_walk_mask(18, 22, hole_ratio=(0.2, 0.4), seed=s) for s in range(2)])
    out = model.sample(image, mask, sampler=sampler, **SAMPLE_ARGS[sampler])
    assert out.shape == (2, 3, 18, 22)
    assert torch.equal(*_known(out, image, mask))
    assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, image)


def test_multiscale_sample_pads_a_smaller_image_and_rejects_a_larger_one(two_scales):
    image, mask = _batch(size=12, seed=6)
    out = two_scales.sample(image, mask, sampler="multiscale", steps=2)
    assert out.shape == (2, 3, 12, 12)
    assert torch.equal(*_known(out, image, mask))
    assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, image)
    big, big_mask = _batch(size=20)
    with pytest.raises(ValueError, match="16x16"):
        two_scales.sample(big, big_mask, sampler="multiscale", steps=2)


# --- through the trainer ---------------------------------------------------------------------------------------

CONFIG = """\
model: {name: DiffusionRestorer, scales: [16], base: 8, mults: [1, 2]}
loss: {name: DiffusionLoss}
data: {patch_size: 16, patches_per_image: 4, n_murals: 6}
train: {batch_size: 8, monitor: psnr_hole, progress_bar: false, log_every: 1}
phases:
  - {name: train, lr: 1.0e-3, epochs: 1}
"""


def test_train_with_the_trainer_and_reload(tmp_path):
    from murallab.train import build_run, load_config, load_model
    from murallab.train.trainer import fit

    path = tmp_path / "tiny_diffusion.yaml"
    path.write_text(CONFIG)
    cfg = load_config(path)
    run = build_run(cfg)
    assert isinstance(run["model"], DiffusionRestorer) and isinstance(run["loss"], DiffusionLoss)
    result = fit(run["model"], run["loss"], run["train_set"], run["val_set"], run["phases"], run["train"],
                 tmp_path / "run", config={k: cfg[k] for k in ("name", "model", "loss", "data")})
    assert result["epochs"] == 1 and result["steps"] >= 2 and result["monitor"] == "psnr_hole"
    assert math.isfinite(result["best"])
    model, ckpt = load_model(result["best_checkpoint"])
    assert isinstance(model, DiffusionRestorer) and model.scales == [16] and not model.training
    want = run["model"].state_dict()
    got = model.state_dict()
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k].cpu()) for k in want)  # copied weights
    losses = [v for _, v in result["history"]["train/loss"]]
    assert len(losses) == result["steps"]
    assert all(v is not None and math.isfinite(v) for v in losses), losses
    assert all(v is not None and math.isfinite(v) for _, v in result["history"]["val/psnr_hole"])


# --- murallab.restore ------------------------------------------------------------------------------------------

def test_restore_tiles_a_larger_image_with_the_model_size(one_scale):
    from murallab.restore import default_tiling, restore

    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 40, 40, generator=g)
    mask = random_walk_mask(40, 40, hole_ratio=(0.2, 0.3), seed=1)
    seen = []
    sample = one_scale.sample

    def recording(img, m, **kw):
        seen.append((tuple(img.shape[-2:]), kw))
        return sample(img, m, **kw)

    one_scale.sample = recording
    try:
        out = restore(one_scale, image, mask, sampler="ddim", steps=3)
        again = restore(one_scale, image, mask, sampler="ddim", steps=3)
    finally:
        del one_scale.sample
    assert default_tiling(one_scale) == (16, 4)
    assert seen and all(shape == (16, 16) for shape, _ in seen)
    assert all(kw == {"sampler": "ddim", "steps": 3} for _, kw in seen)
    assert out.shape == image.shape
    assert torch.equal(*_known(out, image, mask))
    assert out.min() >= 0 and out.max() <= 1 and not torch.equal(out, image)
    assert torch.equal(out, again)


def test_restore_with_a_multiscale_model_uses_its_own_default_sampler(two_scales):
    from murallab.restore import restore

    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    mask = random_walk_mask(16, 16, hole_ratio=(0.2, 0.3), seed=0)
    out = restore(two_scales, image, mask, steps=2)
    assert torch.equal(*_known(out, image, mask))


def test_restore_sampling_is_for_diffusion_models_only():
    from murallab.nn import UNet
    from murallab.restore import default_tiling, restore

    unet = UNet(layers=2, base=4).eval()
    image, mask = torch.rand(3, 32, 32), random_walk_mask(32, 32, hole_ratio=(0.2, 0.3), seed=0)
    with pytest.raises(TypeError, match="sampling"):
        restore(unet, image, mask, sampler="ddim", steps=3)
    assert default_tiling(unet) == (256, 32)
    assert default_tiling(unet, tile=64) == (64, 16)  # a quarter of a small tile: its two ramps fit inside it
    with pytest.raises(ValueError, match="overlap"):
        default_tiling(unet, tile=64, overlap=32)


# --- murallab restore ------------------------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path, one_scale):
    from murallab.nn import UNet
    from murallab.checkpoint import save_checkpoint

    h, w = 20, 28
    rgb = np.random.default_rng(0).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "wall.png")
    holes = random_walk_mask(h, w, hole_ratio=(0.2, 0.3), seed=2)[0].numpy() == 0
    Image.fromarray((~holes).astype(np.uint8) * 255).save(tmp_path / "mask.png")  # white = known
    save_checkpoint(tmp_path / "diffusion.pt", model=one_scale.state_dict(),
                    config={"model": {"name": "DiffusionRestorer", "scales": [16], **TINY}}, progress={})
    save_checkpoint(tmp_path / "unconditional.pt", model=_model([16], cond_drop=1.0).state_dict(),
                    config={"model": {"name": "DiffusionRestorer", "scales": [16], "cond_drop": 1.0, **TINY}},
                    progress={})
    unet = UNet(layers=2, base=4)
    save_checkpoint(tmp_path / "unet.pt", model=unet.state_dict(),
                    config={"model": {"name": "UNet", "layers": 2, "base": 4}}, progress={})
    return {"dir": tmp_path, "rgb": rgb, "holes": holes}


def _restore_argv(d, checkpoint, *extra):
    return ["restore", str(d / "wall.png"), "--mask", str(d / "mask.png"), "--mask-hole-value", "0",
            "--checkpoint", str(d / checkpoint), "-o", str(d / "out.png"), "--device", "cpu", *extra]


def test_cli_restore_with_a_diffusion_checkpoint(files, capsys):
    d = files["dir"]
    rc = cli.main(_restore_argv(d, "diffusion.pt", "--sampler", "ddim", "--steps", "3"))
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    restored = np.asarray(Image.open(d / "out.png").convert("RGB")).astype(int)
    assert restored.shape == files["rgb"].shape
    known = ~files["holes"]
    assert np.abs(restored[known] - files["rgb"][known].astype(int)).max() <= 1  # 8-bit round trip
    assert not np.array_equal(restored[~known], files["rgb"][~known])
    assert "ddim 3 steps" in captured.out


@pytest.mark.parametrize("checkpoint,extra,words", [
    ("diffusion.pt", ["--sampler", "multiscale", "--steps", "3"], ["multi-scale", "[16]"]),
    ("diffusion.pt", ["--steps", "0"], ["--steps", "between 1"]),
    ("unconditional.pt", ["--sampler", "ddim"], ["unconditional", "repaint"]),
    ("diffusion.pt", ["--steps", "3", "2"], ["one count per scale", "[16]", "3 2"]),
    ("unet.pt", ["--steps", "3"], ["--steps", "diffusion checkpoint", "UNet"]),
])
def test_cli_restore_sampling_errors_are_one_line(files, checkpoint, extra, words, capsys):
    d = files["dir"]
    rc = cli.main(_restore_argv(d, checkpoint, *extra))
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("murallab restore: error:") and err.count("\n") == 1, err
    assert all(w in err for w in words), err
    assert not (d / "out.png").exists()


def test_cli_restore_takes_one_step_count_per_scale(files, two_scales, capsys, monkeypatch):
    """``--steps 3 1`` reaches the model's ``sample`` as the list [3, 1] (coarse first) for every tile."""
    from murallab.checkpoint import save_checkpoint

    d = files["dir"]
    save_checkpoint(d / "pair.pt", model=two_scales.state_dict(),
                    config={"model": {"name": "DiffusionRestorer", "scales": [8, 16], **TINY}}, progress={})
    seen = []
    original = DiffusionRestorer.sample

    def spy(self, known, mask, **kw):
        seen.append(kw["steps"])
        return original(self, known, mask, **kw)

    monkeypatch.setattr(DiffusionRestorer, "sample", spy)
    rc = cli.main(_restore_argv(d, "pair.pt", "--steps", "3", "1"))
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert seen and all(s == [3, 1] for s in seen)
    assert "multiscale 3+1 steps" in captured.out


def test_cli_restores_with_an_unconditional_checkpoint_by_repaint(files, capsys):
    d = files["dir"]
    rc = cli.main(_restore_argv(d, "unconditional.pt", "--steps", "4"))
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "repaint 4 steps" in captured.out
    restored = np.asarray(Image.open(d / "out.png").convert("RGB")).astype(int)
    known = ~files["holes"]
    assert np.abs(restored[known] - files["rgb"][known].astype(int)).max() <= 1


def test_samples_is_the_mean_of_single_samples_with_consecutive_seeds(one_scale):
    image, mask = _batch(2, 16, seed=4)
    known = image * mask
    single = [one_scale.sample(known, mask, sampler="ddpm", steps=3, seed=s) for s in (7, 8, 9)]
    mean = one_scale.sample(known, mask, sampler="ddpm", steps=3, seed=7, samples=3)
    assert torch.allclose(mean, torch.stack(single).mean(0), atol=1e-6)
    assert torch.equal(mean[mask.expand_as(mean) == 1], known[mask.expand_as(mean) == 1])
    with pytest.raises(ValueError, match="int seed"):
        one_scale.sample(known, mask, seed=torch.Generator(), samples=2)


def test_paste_known_noises_the_known_image_to_step_t():
    """Known pixels of x_t become q_sample(known, t, z) with z from the generator; holes are untouched; at t = -1
    (ᾱ = 1) the clean known pixels themselves."""
    from murallab.diffusion import NoiseSchedule, paste_known, to_diffusion

    sched = NoiseSchedule.cosine(100)
    image, mask = _batch(2, 16, seed=5)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out = paste_known(sched, x, image, mask, 40, torch.Generator().manual_seed(2))
    z = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    a = sched.alphas_cumprod[40].item()
    want = a ** 0.5 * to_diffusion(image) + (1 - a) ** 0.5 * z
    keep = mask.expand_as(x) == 1
    assert torch.allclose(out[keep], want[keep], atol=1e-5) and torch.equal(out[~keep], x[~keep])
    clean = paste_known(sched, x, image, mask, -1, torch.Generator().manual_seed(2))
    assert torch.allclose(clean[keep], to_diffusion(image)[keep], atol=1e-6)


def test_coarse_noise_corrupts_the_teacher_forced_condition_in_training_only():
    """Conditioning augmentation: with coarse_noise the finer scale's coarse channels (0:3 of its condition) are the
    downsampled image plus noise in training, and exactly the downsampled image in evaluation."""
    from murallab.diffusion import downsample, to_diffusion, upsample

    model = _model([8, 16], coarse_noise=0.5)
    seen = []
    model.nets[1].register_forward_hook(lambda mod, args, out: seen.append(args[2][:, :3].clone()))
    image, mask = _batch(64, 16, seed=6)
    clean = to_diffusion(upsample(downsample(image, 8), 16))
    model.eval()(image, mask)
    assert torch.allclose(seen[-1], clean, atol=1e-6)
    torch.manual_seed(0)
    model.train()(image, mask)
    spread = (seen[-1] - clean).flatten(1).std(1)  # per sample: sigma ~ U(0, 0.5) in [0, 1], x2 in [-1, 1]
    assert 0.2 < spread.mean() < 0.8 and spread.max() > 0.5
    model.eval()


def test_counting_calls_counts_every_scale_and_restores_the_networks(two_scales):
    image, mask = _batch(2, 16, seed=8)
    nets = list(two_scales.nets)
    with two_scales.counting_calls() as calls:
        two_scales.sample(image * mask, mask, steps=3)
        assert calls() == 6  # 3 DDIM calls per scale
    assert list(two_scales.nets) == nets


@pytest.mark.parametrize("gamma", [0.0, 0.3])
def test_input_noise_puts_x_t_off_the_forward_process_in_training_only(gamma):
    """Input perturbation (Ning et al. 2023): in training, x_t - sqrt(ᾱ) x0 - sqrt(1 - ᾱ) ε (ε the returned target
    of an ε-model) is sqrt(1 - ᾱ) γ ξ, so divided by sqrt(1 - ᾱ) its spread is γ; in evaluation it is 0."""
    model = _recording(_model([16], prediction="eps", cond_drop=0.0, input_noise=gamma))
    image, mask = _batch(b=32, seed=2)
    for training in (True, False):
        torch.manual_seed(0)
        with torch.no_grad():
            o = model.train(training)(image, mask)[0]
        x_t, t, _ = model.nets[0].calls[-1]
        a = torch.tensor([float(torch.prod(1 - model.schedule.betas[: ti + 1])) for ti in t.tolist()]
                         ).view(-1, 1, 1, 1).float()
        keep = (1 - a).flatten() > 0.01  # where sqrt(1 - a) is large enough to divide by
        extra = ((x_t - a.sqrt() * o["x0"] - (1 - a).sqrt() * o["target"]) / (1 - a).sqrt())[keep]
        expected = gamma if training else 0.0
        assert abs(extra.std().item() - expected) < 0.03 + 0.1 * expected, (training, extra.std().item())
    model.eval()


@pytest.mark.parametrize("sampler,stop", [("ddim", 0.4), ("ddim", 0.0), ("ddpm", 0.4), ("ddpm", 0.7)])
def test_stop_returns_the_estimate_of_a_last_call_at_that_noise_level(sampler, stop):
    """``sample(stop=s)``: the network's calls run from T-1 down to round(s·(T-1)), evenly spaced, and the holes
    hold the last call's x̂_0 (clipped to the diffusion range [-1, 1]), mapped to [0, 1]."""
    model = _recording(_model([16], refine=True, cond_drop=0.0))
    image, mask = _batch(2, 16, seed=4)
    out = model.sample(image * mask, mask, sampler=sampler, steps=5, seed=1, stop=stop)
    calls = model.nets[0].calls
    T = model.schedule.num_steps
    assert [int(t[0]) for _, t, _ in calls] == timesteps(T, 5, end=round(stop * (T - 1)))
    x_t, t, cond = calls[-1]
    with torch.no_grad():
        last = model.nets[0].net(x_t, t, cond)
    expected = ((last.clamp(-1, 1) + 1) / 2).clamp(0, 1)
    hole = (mask == 0).expand_as(out)
    assert torch.allclose(out[hole], expected[hole], atol=1e-5)
    assert torch.equal(out * mask, image * mask)


def test_stop_reaches_every_scale_and_is_checked():
    model = _recording(_model([8, 16], refine=True, cond_drop=0.0))
    image, mask = _batch(1, 16, seed=5)
    model.sample(image * mask, mask, steps=3, stop=0.5)
    T = model.schedule.num_steps
    for net in model.nets:
        assert [int(t[0]) for _, t, _ in net.calls] == timesteps(T, 3, end=round(0.5 * (T - 1)))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="stop"):
            model.sample(image * mask, mask, steps=3, stop=bad)
