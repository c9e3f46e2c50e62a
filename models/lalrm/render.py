"""Render a batch of LaLRM scenes at their supervision cameras (float32, autocast off)."""

from __future__ import annotations

import torch
from torch import Tensor

from models.render import RenderOutput, render_gaussians, viewmats_from_c2w


def render_views(
    gaussians: dict[str, Tensor],
    K: Tensor,
    c2w: Tensor,
    height: int,
    width: int,
    background: Tensor | None = None,
    mode: str = "3dgs",
    backend: str = "auto",
    near: float = 0.01,
) -> RenderOutput:
    """Render scenes ``gaussians`` (``gaussians_from_map``'s dict, ``[B, N, ...]``) into cameras
    ``K [B, V, 3, 3]`` / ``c2w [B, V, 4, 4]`` at ``height x width``; background ``[3]`` (None:
    black). Returns ``RenderOutput`` with rgb ``[B, V, 3, H, W]``, alpha / depth ``[B, V, 1, H, W]``.
    Runs in float32 outside autocast (gsplat on CUDA, the torch rasteriser elsewhere)."""
    device_type = gaussians["means"].device.type
    with torch.autocast(device_type=device_type, enabled=False):
        f32 = {k: v.float() for k, v in gaussians.items()}
        return render_gaussians(
            f32["means"],
            f32["quats"],
            f32["scales"],
            f32["opacities"],
            f32["colors"],
            viewmats_from_c2w(c2w.float()),
            K.float(),
            width,
            height,
            near=near,
            background=None if background is None else background.float(),
            mode=mode,
            backend=backend,
        )
