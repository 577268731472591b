"""murallab: restore damaged Dunhuang murals with deep learning.

Images are ``(B, 3, H, W)`` float tensors in [0, 1]; masks are ``(B, 1, H, W)`` with 1 = known, 0 = hole.

    import murallab
    from murallab.models import load_pretrained
    restored = murallab.restore(load_pretrained("restorer"), image, mask)   # a mask-guided network
    restored = murallab.restore(load_pretrained("detector"), image)         # a blind one finds the damage itself
    restored = murallab.restore(load_pretrained("diffusion-64"), image, mask, sampler="ddim", steps=50)
"""

from ._device import device
from .restore import detect, restore

__version__ = "0.1.0"
__all__ = ["device", "restore", "detect", "__version__"]
