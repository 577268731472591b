"""murallab.losses.perceptual: VGG-16 features against torchvision's network, Gram matrices, weights handling."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.vgg import cfgs, make_layers

from murallab.data import make_mural
from murallab.losses import (PerceptualLoss, StyleLoss, VGG16Features, VGGWeightsNotFoundError, gram_matrix,
                             perceptual_loss, style_loss)
from murallab.losses.perceptual import VGG16_LAYERS

FILE = "vgg16-397923af.pth"
URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
POOL3 = 17  # torchvision's features[:17] ends with pool3


@pytest.fixture(scope="module")
def tv_features():
    """torchvision's own VGG-16 feature stack up to pool3, random weights (seeded)."""
    torch.manual_seed(0)
    return make_layers(cfgs["D"])[:POOL3].eval()


@pytest.fixture
def weights_file(tmp_path, tv_features):
    """tv_features' weights saved as torchvision's file would hold them ("features.N.weight" keys)."""
    path = tmp_path / FILE
    torch.save({f"features.{k}": v for k, v in tv_features.state_dict().items()}, path)
    return path


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    """Any attempt to reach the network is a test failure."""
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def _batch(n=2, size=48):
    return torch.stack([make_mural(size, size, seed=i) for i in range(n)])


def test_layer_names_follow_torchvisions_network():
    """pool1..pool5 are torchvision's MaxPool layers, conv/relu names the layers before them."""
    full = make_layers(cfgs["D"])
    assert len(VGG16_LAYERS) == len(full)
    for name, module in zip(VGG16_LAYERS, full):
        kind = {"conv": torch.nn.Conv2d, "relu": torch.nn.ReLU, "pool": torch.nn.MaxPool2d}[name[:4]]
        assert isinstance(module, kind), (name, module)
    assert [VGG16_LAYERS.index(p) for p in ("pool1", "pool2", "pool3", "pool5")] == [4, 9, 16, 30]


def test_features_equal_torchvision_with_imagenet_normalisation(weights_file, tv_features):
    """Loaded from a file, our features equal torchvision's stack applied to (x - mean) / std."""
    x = _batch()
    feats = VGG16Features(weights=weights_file)(x)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h, ref = (x - mean) / std, []
    with torch.no_grad():
        for i, m in enumerate(tv_features):
            h = m(h)
            if i in (4, 9, 16):
                ref.append(h.clone())
    assert [tuple(f.shape) for f in feats] == [(2, 64, 24, 24), (2, 128, 12, 12), (2, 256, 6, 6)]
    for a, b in zip(feats, ref):
        torch.testing.assert_close(a, b)


def test_imagenet_weights_come_from_the_torch_hub_cache(monkeypatch, tmp_path, weights_file, tv_features):
    """weights='imagenet' reads $TORCH_HOME/hub/checkpoints/vgg16-397923af.pth."""
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    weights_file.rename(home / "hub" / "checkpoints" / FILE)
    monkeypatch.setenv("TORCH_HOME", str(home))
    f = VGG16Features(layers=("relu1_1",), weights="imagenet")
    assert torch.equal(f.features[0].weight, tv_features[0].weight)
    assert len(f.features) == 2  # built only up to the deepest requested layer


def test_offline_error_names_file_folder_and_url(monkeypatch, tmp_path):
    """No cached file and no download: a FileNotFoundError that says what to fetch and where to put it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(VGGWeightsNotFoundError) as err:
        VGG16Features()
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert FILE in msg and str(tmp_path / "hub" / "checkpoints") in msg and URL in msg and "weights=None" in msg
    with pytest.raises(FileNotFoundError, match="no file at"):
        VGG16Features(weights=tmp_path / "missing.pth")


def test_frozen_eval_and_gradients_reach_the_input():
    f = VGG16Features(weights=None)
    assert not any(p.requires_grad for p in f.parameters())
    parent = torch.nn.Sequential(f)
    parent.train()
    assert not f.training
    x = _batch(1, 32).requires_grad_()
    sum(t.sum() for t in f(x)).backward()
    assert x.grad.abs().sum() > 0
    assert "random (untrained)" in repr(f)
    with pytest.raises(ValueError, match="unknown VGG-16 layer"):
        VGG16Features(layers=("pool6",), weights=None)
    with pytest.raises(ValueError, match="RGB"):
        f(torch.rand(1, 1, 32, 32))


def test_gram_matrix_formula_and_size_independence():
    """G[b, i, j] = Σ_hw F[b, i, hw] F[b, j, hw] / (C·H·W); tiling the features 2x2 leaves G unchanged, which is
    what the C·H·W normalisation buys."""
    f = torch.rand(2, 5, 6, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = gram_matrix(f)
    ref = torch.einsum("bihw,bjhw->bij", f, f) / (5 * 6 * 7)
    torch.testing.assert_close(g, ref.float())
    torch.testing.assert_close(gram_matrix(f.repeat(1, 1, 2, 2)), g)


def test_losses_zero_at_identity_and_rise_with_damage():
    """Perceptual and style losses are 0 for identical images and rise with noise strength (random features)."""
    f = VGG16Features(weights=None)
    x = _batch()
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    for fn, module in ((perceptual_loss, PerceptualLoss(f)), (style_loss, StyleLoss(f))):
        assert float(fn(x, x, f)) == 0.0
        values = [float(module((x + s * noise).clamp(0, 1), x)) for s in (0.02, 0.1, 0.3)]
        assert 0 < values[0] < values[1] < values[2], (fn.__name__, values)


def test_classifier_keys_ignored_and_conv_maps_survive_the_relu(tmp_path, tv_features):
    """A whole ``vgg16`` state dict (classifier keys too) loads; a conv layer's map is returned as the conv
    computed it, negative values included, not rectified by the next (in torchvision: in-place) ReLU."""
    path = tmp_path / "full.pth"
    state = {f"features.{k}": v for k, v in tv_features.state_dict().items()}
    torch.save(state | {"classifier.0.weight": torch.zeros(4, 8), "classifier.0.bias": torch.zeros(4)}, path)
    f = VGG16Features(layers=("conv2_1", "relu2_1"), weights=path)
    assert len(f.features) == 7
    x = _batch(1, 32)
    conv, relu = f(x)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = tv_features[:6]((x - mean) / std)
    torch.testing.assert_close(conv, ref)
    assert (conv < 0).any()
    torch.testing.assert_close(relu, conv.clamp_min(0))
