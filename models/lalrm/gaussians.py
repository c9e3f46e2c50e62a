"""Raw 12-channel Gaussian map → pixel-aligned 3D Gaussians (Wonderland §3.3).

Channels of ``map [B, F, 12, H, W]``: 0-2 RGB, 3-5 scale, 6-9 rotation (wxyz), 10 opacity,
11 ray distance. Activations:

* colour ``sigmoid`` (in [0, 1]);
* ray distance ``t = near + sigmoid(x) · (far - near)``; the centre is exactly ``o + t · d`` with
  ``(o, d)`` the world ray through that map pixel's centre (``models.geometry.camera_rays``), so
  every Gaussian lies on its pixel's ray;
* scale, resolution-aware: ``m = exp(log s_min + sigmoid(x) · (log s_max - log s_min))`` is a
  standard deviation in *map pixels* (log-uniform in ``[scale_min, scale_max]``), converted to
  world units by the pixel's footprint ``z / f`` at its z-depth ``z`` (``f`` = mean focal of the
  map's ``K``). A map at half resolution has half the focal, so the same ``m`` covers the same
  fraction of the image at any resolution;
* rotation: ``normalize(q + (1, 0, 0, 0))`` (unit quaternion, identity where ``q = 0``);
* opacity ``sigmoid(x + opacity_bias)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from models.geometry import camera_rays

IDENTITY_QUAT = (1.0, 0.0, 0.0, 0.0)


def gaussians_from_map(
    gmap: Tensor,
    K: Tensor,
    c2w: Tensor,
    near: float,
    far: float,
    scale_min: float = 0.1,
    scale_max: float = 32.0,
    opacity_bias: float = -2.0,
) -> dict[str, Tensor]:
    """Activate ``gmap [B, F, 12, H, W]`` (in float32, autocast off) of cameras ``K [B, F, 3, 3]``
    (of the map's ``H x W`` pixels) and ``c2w [B, F, 4, 4]``.

    Returns (N = F·H·W, ``(f, y, x)`` order): means ``[B, N, 3]``, quats ``[B, N, 4]`` (unit, wxyz),
    scales ``[B, N, 3]`` (world std), opacities ``[B, N]``, colors ``[B, N, 3]``, distances
    ``[B, N]`` (along the unit ray), origins / directions ``[B, N, 3]`` (the pixels' rays).
    """
    if gmap.shape[2] != 12:
        raise ValueError(f"expected a 12-channel Gaussian map [B, F, 12, H, W], got {gmap.shape}")
    with torch.autocast(device_type=gmap.device.type, enabled=False):
        return _activate(gmap, K, c2w, near, far, scale_min, scale_max, opacity_bias)


def _activate(gmap, K, c2w, near, far, scale_min, scale_max, opacity_bias) -> dict[str, Tensor]:
    B, Fr, _, H, W = gmap.shape
    x = gmap.float().permute(0, 1, 3, 4, 2)  # [B, F, H, W, 12]
    K, c2w = K.float(), c2w.float()
    origins, dirs = camera_rays(K, c2w, H, W)  # [B, F, H, W, 3]

    distance = near + torch.sigmoid(x[..., 11]) * (far - near)
    means = origins + distance[..., None] * dirs
    # z-depth of the centre: the ray's camera-frame direction is K⁻¹[u, v, 1] / |K⁻¹[u, v, 1]|
    z = (dirs * c2w[:, :, None, None, :3, 2]).sum(-1) * distance
    focal = 0.5 * (K[..., 0, 0] + K[..., 1, 1])  # [B, F]
    log_min, log_max = math.log(scale_min), math.log(scale_max)
    pixels = torch.exp(log_min + torch.sigmoid(x[..., 3:6]) * (log_max - log_min))
    scales = pixels * (z / focal[..., None, None])[..., None]
    identity = x.new_tensor(IDENTITY_QUAT)
    quats = F.normalize(x[..., 6:10] + identity, dim=-1)

    def flat(t: Tensor) -> Tensor:
        return t.reshape(B, Fr * H * W, *t.shape[4:])

    return {
        "means": flat(means),
        "quats": flat(quats),
        "scales": flat(scales),
        "opacities": flat(torch.sigmoid(x[..., 10] + opacity_bias)),
        "colors": flat(torch.sigmoid(x[..., 0:3])),
        "distances": flat(distance),
        "origins": flat(origins),
        "directions": flat(dirs),
    }
