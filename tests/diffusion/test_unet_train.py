"""The time-conditioned U-Net, the ε loss with its cycle term, training and its checkpoint cache."""

import math

import pytest
import torch

from murallab.data import make_murals, random_walk_masks
from murallab.diffusion import NoiseSchedule, TimeUNet, diffusion_loss, mask_condition, timestep_embedding, train_diffusion
from murallab.diffusion.train import fingerprint


def test_timestep_embedding_is_the_sinusoid():
    t = torch.tensor([0, 3, 250])
    e = timestep_embedding(t, 8)
    assert e.shape == (3, 8)
    for i, ti in enumerate(t.tolist()):
        for k in range(4):
            f = 10000 ** (-k / 4)
            assert e[i, k].item() == pytest.approx(math.cos(ti * f), abs=1e-5)
            assert e[i, 4 + k].item() == pytest.approx(math.sin(ti * f), abs=1e-5)
    assert timestep_embedding(t, 7).shape == (3, 7)


@pytest.mark.parametrize("size, mults, cond, attention", [(16, (1, 2), 0, True), (32, (1, 2, 2), 4, False),
                                                           (24, (1, 2, 2), 8, True)])
def test_unet_shapes(size, mults, cond, attention):
    model = TimeUNet(cond_channels=cond, base=8, mults=mults, attention=attention)
    x = torch.randn(2, 3, size, size)
    c = torch.randn(2, cond, size, size) if cond else None
    assert model(x, torch.tensor([3, 7]), c).shape == x.shape
    assert model(x, 5, c).shape == x.shape  # one t for the whole batch
    rebuilt = TimeUNet(**model.config)
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in model.parameters())


def test_unet_depends_on_t_and_cond():
    torch.manual_seed(0)
    model = TimeUNet(cond_channels=4, base=8, mults=(1, 2)).eval()
    x, c = torch.randn(1, 3, 16, 16), torch.randn(1, 4, 16, 16)
    with torch.no_grad():
        for p in model.out[-1].parameters():  # the last conv may start at any value; make the output non-trivial
            p.normal_(0, 0.1)
        assert not torch.allclose(model(x, 1, c), model(x, 900, c))
        assert not torch.allclose(model(x, 1, c), model(x, 1, c + 1))


def test_unet_errors():
    model = TimeUNet(cond_channels=4, base=8, mults=(1, 2, 2))
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.randn(1, 3, 18, 18), 0, torch.randn(1, 4, 18, 18))
    with pytest.raises(ValueError, match="needs cond"):
        model(torch.randn(1, 3, 16, 16), 0)
    with pytest.raises(ValueError, match="unconditional"):
        TimeUNet(base=8)(torch.randn(1, 3, 16, 16), 0, torch.randn(1, 4, 16, 16))


def test_cycle_term_is_the_masked_x0_error():
    """Recompute the loss with the same random draws, written out by hand."""
    sched = NoiseSchedule.cosine(50)
    model = TimeUNet(base=8, mults=(1, 2)).eval()
    x0 = torch.rand(2, 3, 16, 16) * 2 - 1
    mask = random_walk_masks(2, 16, hole_ratio=(0.2, 0.4), seed=0)
    loss, parts = diffusion_loss(model, sched, x0, mask=mask, cycle_weight=0.5,
                                 generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    t = torch.randint(0, 50, (2,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    a = sched.alphas_cumprod[t].float().view(2, 1, 1, 1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
    with torch.no_grad():
        eps = model(xt, t)
    x0_hat = ((xt - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
    cycle = ((mask * x0_hat - mask * x0) ** 2).sum() / (3 * mask.sum())
    eps_loss = ((eps - noise) ** 2).mean()
    assert parts["eps"] == pytest.approx(eps_loss.item(), rel=1e-5)
    assert parts["cycle"] == pytest.approx(cycle.item(), rel=1e-5)
    assert loss.item() == pytest.approx(eps_loss.item() + 0.5 * cycle.item(), rel=1e-5)
    with pytest.raises(ValueError, match="mask"):
        diffusion_loss(model, sched, x0, cycle_weight=1.0)


def _held_out_loss(model, sched, images, masks):
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        return sum(diffusion_loss(model, sched, images * 2 - 1, cond=mask_condition(images, masks),
                                  generator=g)[0].item() for _ in range(4)) / 4


def test_a_few_training_steps_lower_the_loss(tmp_path):
    torch.manual_seed(0)
    sched = NoiseSchedule.cosine(100)
    images = make_murals(12, 16, seed=0)
    masks = random_walk_masks(12, 16, hole_ratio=(0.1, 0.4), seed=0)
    model = TimeUNet(cond_channels=4, base=8, mults=(1, 2))
    before = _held_out_loss(model, sched, images, masks)
    record = train_diffusion(model, sched, images, condition=mask_condition, masks=masks, steps=40, batch_size=8,
                             lr=3e-3, seed=0, checkpoint=tmp_path / "m.pt")
    after = _held_out_loss(model, sched, images, masks)
    assert not record["cached"] and len(record["losses"]) == 40
    assert after < 0.7 * before, (before, after)
    assert not model.training

    # the cache: the same config loads the saved weights instead of training
    again = TimeUNet(cond_channels=4, base=8, mults=(1, 2))
    rec2 = train_diffusion(again, sched, images, condition=mask_condition, masks=masks, steps=40, batch_size=8,
                           lr=3e-3, seed=0, checkpoint=tmp_path / "m.pt")
    assert rec2["cached"] and rec2["losses"] == record["losses"]
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))
    # another config (here: other data) trains again
    rec3 = train_diffusion(TimeUNet(cond_channels=4, base=8, mults=(1, 2)), sched, images.flip(-1),
                           condition=mask_condition, masks=masks, steps=2, batch_size=8, seed=0,
                           checkpoint=tmp_path / "m.pt")
    assert not rec3["cached"]


def test_fingerprint_sees_values():
    x = torch.rand(2, 3, 4, 4)
    assert fingerprint(x) == fingerprint(x.clone()) != fingerprint(x + 1e-3)


def test_checkpoint_has_the_common_schema_and_load_model_rebuilds_it(tmp_path):
    """train_diffusion writes the schema of every murallab checkpoint: config["model"] names TimeUNet with its
    constructor arguments, so load_model rebuilds an equal network, and config["schedule"] rebuilds the schedule."""
    from murallab.train import load_model

    torch.manual_seed(0)
    sched = NoiseSchedule.linear(30)
    model = TimeUNet(cond_channels=4, base=8, mults=(1, 2), attention=False)
    images, masks = make_murals(4, 16, seed=1), random_walk_masks(4, 16, hole_ratio=(0.1, 0.4), seed=1)
    train_diffusion(model, sched, images, condition=mask_condition, masks=masks, steps=2, batch_size=2, seed=0,
                    checkpoint=tmp_path / "d.pt")
    loaded, ckpt = load_model(tmp_path / "d.pt")
    assert type(loaded) is TimeUNet and not loaded.training
    assert ckpt["config"]["model"] == {"name": "TimeUNet", **model.config}
    assert loaded.config == model.config
    mine, theirs = model.state_dict(), loaded.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert torch.equal(NoiseSchedule.from_config(ckpt["config"]["schedule"]).betas, sched.betas)
    # the cache still recognises its own file
    again = TimeUNet(cond_channels=4, base=8, mults=(1, 2), attention=False)
    assert train_diffusion(again, sched, images, condition=mask_condition, masks=masks, steps=2, batch_size=2,
                           seed=0, checkpoint=tmp_path / "d.pt")["cached"]
