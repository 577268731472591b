"""murallab: restore damaged Dunhuang murals with deep learning.

Images are ``(B, 3, H, W)`` float tensors in [0, 1]; masks are ``(B, 1, H, W)`` with 1 = known, 0 = hole.
"""

from ._device import device

__version__ = "0.1.0"
__all__ = ["device", "__version__"]
