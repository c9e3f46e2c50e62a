"""Image-quality metrics with learned weights (torch only; weights loaded from local files)."""

from .lpips import LPIPS, VGG16_LAYOUT

__all__ = ["LPIPS", "VGG16_LAYOUT"]
