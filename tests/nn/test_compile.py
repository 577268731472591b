"""``TrainConfig.compile``: the four restoration networks trace as one graph (no graph break) and compute what they
compute eagerly (the diffusion models still break the graph: they compile in pieces).

Dynamo's ``eager`` backend traces without generating code, so this runs in seconds on a CPU; a graph break under
``fullgraph=True`` raises. The data-dependent branch of push-pull (its early stop) is skipped while compiling, so
these tests also pin that skipping it changes no output.
"""

from __future__ import annotations

import pytest
import torch

from murallab.classical import push_pull
from murallab.data import random_walk_masks
from murallab.nn import DualDecoderUNet, FFCUNet, PConvUNet, UNet


def _batch(size: int = 64):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, size, size, generator=g)
    return image, random_walk_masks(2, size, seed=1)


@pytest.mark.parametrize("make", [lambda: UNet(layers=4, base=8, refine=True), lambda: PConvUNet(layers=4, base=8),
                                  lambda: FFCUNet(base=8, blocks=2), lambda: DualDecoderUNet(base=8, depth=3)],
                         ids=["UNet", "PConvUNet", "FFCUNet", "DualDecoderUNet"])
def test_networks_trace_as_one_graph(make):
    torch.manual_seed(0)
    net = make().eval()
    image, mask = _batch()
    args = (image,) if net.task == "blind" else (image, mask)
    compiled = torch.compile(net, backend="eager", fullgraph=True)
    with torch.no_grad():
        want, got = net(*args), compiled(*args)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)  # a tensor, or DualDecoderUNet's (image, P(damage))


def test_compiled_push_pull_pushes_to_one_pixel_with_the_same_result():
    """Odd sizes, so the pyramid's ceil-mode edge blocks are exercised."""
    image = torch.rand(1, 3, 37, 50, generator=torch.Generator().manual_seed(0))
    mask = random_walk_masks(1, 64, seed=3)[..., :37, :50]
    got = torch.compile(push_pull, backend="eager", fullgraph=True)(image, mask)
    torch.testing.assert_close(got, push_pull(image, mask), rtol=1e-5, atol=1e-6)

