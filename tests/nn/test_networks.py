"""murallab.nn networks: shapes, parameter groups, frozen BatchNorm, hole invariance and the blind composite."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from murallab.classical import push_pull
from murallab.data import make_mural, random_walk_masks
from murallab.nn import DualDecoderUNet, FFCUNet, PConvUNet, UNet
from murallab.nn.blocks import encoder_plan

SMALL = dict(layers=4, base=8)


@pytest.fixture(scope="module")
def batch():
    image = torch.stack([make_mural(64, 80, seed=s) for s in range(2)])
    return image, random_walk_masks(2, 64, 80, seed=0)


@pytest.mark.parametrize("make", [lambda: PConvUNet(**SMALL), lambda: UNet(**SMALL)])
@pytest.mark.parametrize("h,w", [(250, 333), (64, 80), (17, 9)])
def test_unet_output_shape_for_any_size(make, h, w):
    model = make().eval()
    image, mask = torch.rand(1, 3, h, w), random_walk_masks(1, h, w, seed=0)
    with torch.no_grad():
        assert model(image, mask).shape == (1, 3, h, w)


@pytest.mark.parametrize("h,w", [(250, 333), (17, 9)])
def test_dual_decoder_shapes_and_ranges(h, w):
    model = DualDecoderUNet(base=8, depth=3).eval()
    with torch.no_grad():
        image, damage = model(torch.rand(2, 3, h, w))
    assert image.shape == (2, 3, h, w) and damage.shape == (2, 1, h, w)
    for t in (image, damage):
        assert t.min() >= 0 and t.max() <= 1


def test_paper_network_parameter_count():
    """The paper's 7-layer PConv U-Net counted by hand: conv weights, BN affine pairs, and a bias on the two layers
    without BatchNorm (the first and the last)."""
    plan = encoder_plan(7, 3, 64)
    assert [k for *_, k in plan] == [7, 5, 5, 3, 3, 3, 3]
    assert [c for _, c, _ in plan] == [64, 128, 256, 512, 512, 512, 512]
    chans = [3, 64, 128, 256, 512, 512, 512, 512]
    enc = sum(chans[i] * chans[i + 1] * k * k for i, k in enumerate([7, 5, 5, 3, 3, 3, 3])) + 2 * sum(chans[2:]) + 64
    dec = sum((chans[i + 1] + chans[i]) * chans[i] * 9 for i in range(7)) + 2 * sum(chans[1:7]) + 3
    model = PConvUNet()
    assert sum(p.numel() for p in model.encoder_parameters()) == enc
    assert sum(p.numel() for p in model.parameters()) == enc + dec == 25_779_860


@pytest.mark.parametrize("make", [lambda: PConvUNet(**SMALL), lambda: UNet(**SMALL),
                                  lambda: DualDecoderUNet(base=8, depth=3)])
def test_encoder_and_decoder_groups_partition_parameters(make):
    model = make()
    enc, dec = list(model.encoder_parameters()), list(model.decoder_parameters())
    ids = [id(p) for p in enc + dec]
    assert len(ids) == len(set(ids))  # disjoint
    assert set(ids) == {id(p) for p in model.parameters()}  # and together everything
    assert enc and dec


@pytest.mark.parametrize("make", [lambda: PConvUNet(**SMALL), lambda: DualDecoderUNet(base=8, depth=3)])
def test_frozen_encoder_bn_keeps_running_stats_in_train_mode(make, batch):
    image, mask = batch
    model = make().freeze_encoder_bn(True)
    model.train()
    run = (lambda: model(image, mask)) if isinstance(model, PConvUNet) else (lambda: model(image))
    enc_bn = [m for m in model.enc.modules() if isinstance(m, nn.BatchNorm2d)]
    dec_bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and not any(m is e for e in enc_bn)]
    before = [(m.running_mean.clone(), m.num_batches_tracked.clone()) for m in enc_bn + dec_bn]
    run()
    assert model.training and all(not m.training for m in enc_bn)
    for m, (mean, n) in zip(enc_bn, before[:len(enc_bn)]):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.num_batches_tracked, n)
    for m, (mean, _) in zip(dec_bn, before[len(enc_bn):]):
        assert not torch.equal(m.running_mean, mean)  # the decoder still learns its statistics
    model.freeze_encoder_bn(False)
    assert all(m.training for m in enc_bn)


def test_pconv_unet_never_reads_hole_values(batch):
    """Replacing what is inside the holes changes nothing: partial convolutions only see known pixels."""
    image, mask = batch
    model = PConvUNet(**SMALL).eval()
    garbage = torch.where(mask.bool(), image, torch.rand_like(image) * 50)
    with torch.no_grad():
        assert torch.equal(model(image, mask), model(garbage, mask))


def test_gradients_reach_every_parameter(batch):
    image, mask = batch
    for model, out in [(PConvUNet(**SMALL), lambda m: m(image, mask)), (UNet(**SMALL), lambda m: m(image, mask)),
                       (DualDecoderUNet(base=8, depth=3), lambda m: torch.cat(m(image), 1))]:
        out(model).square().mean().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_blind_restored_keeps_pixels_below_threshold():
    """The blind network's restored image: the input where P(damage) < threshold, its own image elsewhere
    (values copied, so exact)."""
    g = torch.Generator().manual_seed(0)
    corrupted, image = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    damage = torch.rand(2, 1, 16, 16, generator=g)
    model = DualDecoderUNet(base=8, depth=3)
    batch = {"corrupted": corrupted}  # a blind network needs nothing else
    for threshold in (0.1, 0.5):
        out = model.restored((image, damage), batch, threshold=threshold)
        keep = (damage < threshold).expand_as(out)
        assert torch.equal(out[keep], corrupted[keep])
        assert torch.equal(out[~keep], image[~keep])


@pytest.mark.parametrize("make", [lambda: PConvUNet(**SMALL), lambda: UNet(**SMALL),
                                  lambda: DualDecoderUNet(base=8, depth=3)])
def test_one_calling_convention(make, batch):
    """Every network runs as ``model(*model.inputs(batch))`` and ``model.restored(output, batch)`` keeps the
    known pixels of the input; ``task`` tells which input it reads."""
    image, mask = batch
    masked = image * mask
    model = make().eval()
    b = {"image": image, "mask": mask, "masked": masked}
    with torch.no_grad():
        restored = model.restored(model(*model.inputs(b)), b)
    assert restored.shape == image.shape and 0 <= restored.min() and restored.max() <= 1
    if model.task == "blind":
        assert model.inputs(b)[0] is masked and model.inputs(dict(b, corrupted=image))[0] is image
    else:
        assert len(model.inputs(b)) == 2
        known = mask.bool().expand_as(image)
        assert torch.equal(restored[known], image[known])


@pytest.mark.parametrize("make", [lambda: PConvUNet(**SMALL), lambda: UNet(**SMALL),
                                  lambda: FFCUNet(base=8, blocks=1)])
def test_forward_does_not_check_the_mask_values(make, batch, monkeypatch):
    """Masks are checked where they enter the library (restore, the datasets, the command line), not in every
    training step: a forward calls no torch.unique (a host sync), and a mask at the boundary is still refused."""
    from murallab.restore import restore

    image, mask = batch
    model = make().eval()
    with torch.no_grad():
        expected = model(image * mask, mask)

    def refuse(*args, **kwargs):
        raise AssertionError("torch.unique called in forward")

    monkeypatch.setattr(torch, "unique", refuse)
    with torch.no_grad():
        torch.testing.assert_close(model(image * mask, mask), expected, rtol=0, atol=0)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="binary"):
        restore(model, image[0], mask[0] * 0.5 + 0.25)
    with pytest.raises(ValueError, match="size"):
        restore(model, image[0], mask[0, :, :-1])


@pytest.mark.parametrize("cls", [PConvUNet, UNet])
def test_refine_starts_as_push_pull_and_learns_a_correction(cls, batch):
    """refine=True: the untrained network returns push_pull exactly; one Adam step moves it off."""
    image, mask = batch
    torch.manual_seed(0)
    model = cls(**SMALL, refine=True)
    fill = push_pull(image * mask, mask)
    assert torch.equal(model(image * mask, mask), fill)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ((model(image * mask, mask) - image).abs() * (1 - mask)).mean().backward()
    opt.step()
    assert not torch.allclose(model(image * mask, mask), fill)


@pytest.mark.parametrize("cls", [PConvUNet, UNet])
def test_bilinear_upsampling_option(cls, batch):
    image, mask = batch
    torch.manual_seed(0)
    nearest = cls(**SMALL).eval()
    bilinear = cls(**SMALL, upsample="bilinear").eval()
    bilinear.load_state_dict(nearest.state_dict())
    with torch.no_grad():
        a, b = nearest(image * mask, mask), bilinear(image * mask, mask)
    assert a.shape == b.shape and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="nearest"):
        cls(**SMALL, upsample="bicubic")
