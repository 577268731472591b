"""Networks: the partial convolution layer and the restoration U-Nets.

- ``PartialConv2d``: Liu et al. 2018, with the paper's sum(1)/sum(M) window factor.
- ``PConvUNet``: the paper's U-Net of partial convolutions (seeds 001, 003).
- ``UNet``: the same shape with plain convolutions and the mask as a 4th channel (the baseline).
- ``FFCUNet``: a U-Net refining push-pull with fast Fourier convolutions (LaMa's image-wide view) at 1/8 size.
- ``DualDecoderUNet``: blind restoration, one encoder and two decoders (image, damage probability) (seed 002).
- ``DiffusionRestorer`` (``murallab.diffusion``): a mask-conditioned diffusion model, or DiffuMural-lite across
  scales, trained by the same trainer and restoring through ``model.sample``.
"""

from .dual_decoder_unet import DualDecoderUNet
from .ffc_unet import FFCUNet
from .partial_conv import PartialConv2d
from .pconv_unet import PConvUNet
from .unet import UNet

from ..diffusion.restorer import DiffusionRestorer  # isort: skip (after the networks: murallab.diffusion needs them)

MODELS = {"PConvUNet": PConvUNet, "UNet": UNet, "FFCUNet": FFCUNet,  # model(image, mask)
          "DualDecoderUNet": DualDecoderUNet,                           # model(image) -> (image, damage)
          "DiffusionRestorer": DiffusionRestorer}                       # model.sample(image, mask)


def build_model(name: str, **kwargs):
    """A network by class name and constructor arguments, as written in configs and checkpoints:
    ``build_model("PConvUNet", layers=5, base=16)``.

    Besides the restoration networks of ``MODELS`` (what ``murallab train`` configs name), it builds
    ``"TimeUNet"``, the diffusion noise predictor ``model(x_t, t, cond)``, so that ``load_model`` opens
    ``murallab.diffusion.train_diffusion``'s checkpoints.
    """
    if name == "TimeUNet":  # imported here: murallab.diffusion imports murallab.train, which imports this package
        from ..diffusion.unet import TimeUNet

        return TimeUNet(**kwargs)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)} (or the diffusion model TimeUNet)")
    return MODELS[name](**kwargs)


__all__ = ["PartialConv2d", "PConvUNet", "UNet", "FFCUNet", "DualDecoderUNet", "MODELS", "build_model"]
