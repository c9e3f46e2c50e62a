"""Per-pixel Plücker ray embedding (Wonderland §3.2): channels ``(o × d, d)``, moment first."""

import torch
from torch import Tensor

from .cameras import scale_K
from .projection import camera_rays


def plucker_rays(K: Tensor, c2w: Tensor, H: int, W: int, downsample: int = 1) -> Tensor:
    """Plücker embedding ``[..., 6, H // downsample, W // downsample]``.

    ``K`` ``[..., 3, 3]`` (for an ``H x W`` image), ``c2w`` ``[..., 4, 4]``. Channels 0-2 are the
    moment ``o × d``, channels 3-5 the unit direction ``d``. With ``downsample = f`` the rays go
    through the centres of ``f x f`` pixel blocks, i.e. exactly
    ``plucker_rays(scale_K(K, 1 / f), c2w, H // f, W // f)`` (latent resolution).
    """
    if H % downsample or W % downsample:
        raise ValueError(f"H={H}, W={W} not divisible by downsample={downsample}")
    if downsample != 1:
        K = scale_K(K, 1.0 / downsample)
    # geometry stays in the cameras' precision also under bf16 autocast (FSDP / bf16-mixed)
    with torch.autocast(K.device.type, enabled=False):
        origins, dirs = camera_rays(K, c2w, H // downsample, W // downsample)
        moment = torch.linalg.cross(origins, dirs, dim=-1)
    return torch.cat([moment, dirs], dim=-1).movedim(-1, -3)
