"""Pure-torch Gaussian rasteriser (3DGS and 2DGS surfels), gsplat-equivalent, any device.

Inputs are already flattened to one batch dim ``B`` (see ``gaussians.render_gaussians``). Outputs are
channel-last like gsplat's; the public API converts them to ``[..., C, 3, H, W]``.
"""

import torch
from torch import Tensor

from .gaussians_args import RasterArgs
from .gaussians_composite import (
    LOWPASS_RADIUS_2DGS,
    alpha_2dgs,
    alpha_3dgs,
    bin_tiles,
    composite,
)
from .gaussians_project import project_2dgs, project_3dgs


def rasterize_torch(a: RasterArgs) -> dict[str, Tensor | None]:
    """Render ``B`` scenes from ``C`` cameras each (``RasterArgs``; colors ``[B, C, N, D]``).

    Returns a dict with ``colors [B, C, H, W, D]``, ``alphas [B, C, H, W, 1]``, ``depths
    [B, C, H, W, 1]`` (alpha-normalised z) and ``normals [B, C, H, W, 3]`` (2dgs: Σ wᵢ nᵢ,
    camera frame; 3dgs: None).
    """
    B, C = a.viewmats.shape[:2]
    N = a.means.shape[1]
    colors, width, height, mode = a.colors, a.width, a.height, a.mode
    D = colors.shape[-1]
    cams = (a.viewmats, a.Ks, width, height, a.near, a.far)
    if mode == "3dgs":
        proj = project_3dgs(a.means, a.quats, a.scales, a.opacities, *cams, a.eps2d)
        alpha_fn = alpha_3dgs
    else:  # 2dgs (RasterArgs checked the mode)
        proj = project_2dgs(a.means, a.quats, a.scales, *cams)
        alpha_fn = alpha_2dgs

    op = a.opacities[:, None, :, None].expand(B, C, N, 1)
    params = torch.cat([proj.params, op.to(proj.params.dtype)], dim=-1)
    feats = [colors, proj.depths[..., None].to(colors.dtype)]
    if proj.normals is not None:
        feats.append(proj.normals.to(colors.dtype))
    feats = torch.cat(feats, dim=-1)

    n_img = B * C
    support = proj.radii if mode == "3dgs" else proj.radii.clamp_min(LOWPASS_RADIUS_2DGS)
    ids, counts, tw, th = bin_tiles(
        proj.means2d.reshape(n_img, N, 2),
        proj.radii.reshape(n_img, N, 2),
        support.reshape(n_img, N, 2),
        proj.depths.reshape(n_img, N),
        proj.valid.reshape(n_img, N),
        width,
        height,
    )
    acc, T = composite(
        ids,
        counts,
        tw,
        th,
        params.reshape(n_img * N, -1),
        feats.reshape(n_img * N, -1),
        alpha_fn,
        width,
        height,
    )
    acc = acc.reshape(B, C, height, width, -1)
    T = T.reshape(B, C, height, width, 1)
    alphas = 1.0 - T
    rgb = acc[..., :D]
    if a.backgrounds is not None:
        rgb = rgb + T * a.backgrounds[:, :, None, None, :]
    depths = acc[..., D : D + 1] / alphas.clamp_min(1e-10)
    normals = acc[..., D + 1 : D + 4] if mode == "2dgs" else None
    return {"colors": rgb, "alphas": alphas, "depths": depths, "normals": normals}
