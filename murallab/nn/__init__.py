"""Networks: the partial convolution layer and the restoration U-Nets.

- ``PartialConv2d``: Liu et al. 2018, with the paper's sum(1)/sum(M) window factor.
- ``PConvUNet``: the paper's U-Net of partial convolutions (seeds 001, 003).
- ``UNet``: the same shape with plain convolutions and the mask as a 4th channel (the baseline).
- ``FFCUNet``: a U-Net refining push-pull with fast Fourier convolutions (LaMa's image-wide view) at 1/8 size.
- ``DualDecoderUNet``: blind restoration, one encoder and two decoders (image, damage probability) (seed 002).

Each network's ``task`` says how it is called: ``"guided"`` networks ``model(masked, mask)``, the ``"blind"`` one
``model(image) -> (image, damage)``. Networks only: building one by name is ``murallab.models.build_model``, and the
diffusion models are in ``murallab.diffusion``.
"""

from .dual_decoder_unet import DualDecoderUNet
from .ffc_unet import FFCUNet
from .partial_conv import PartialConv2d
from .pconv_unet import PConvUNet
from .unet import UNet

__all__ = ["PartialConv2d", "PConvUNet", "UNet", "FFCUNet", "DualDecoderUNet"]
