"""gsplat CUDA backend: ``gsplat.rasterization`` (3DGS) and ``gsplat.rasterization_2dgs`` (surfels).

gsplat is imported lazily: importing its CUDA backend JIT-compiles the extension on first use
(about 70 s; set ``TORCH_EXTENSIONS_DIR`` to a kept cache).
"""

from functools import cache

import torch
from torch import Tensor

from .gaussians_args import RasterArgs


@cache
def gsplat_available() -> bool:
    """True when CUDA is present and gsplat's CUDA extension loads (compiling it if needed)."""
    if not torch.cuda.is_available():
        return False
    try:
        from gsplat.cuda._backend import _C
    except Exception:
        return False
    return _C is not None


def rasterize_gsplat(a: RasterArgs) -> dict[str, Tensor | None]:
    """Same contract as ``gaussians_torch.rasterize_torch`` (float32 CUDA tensors)."""
    import gsplat

    B, C = a.viewmats.shape[:2]
    colors = a.colors
    if a.mode == "2dgs" and colors.dim() == 3:  # rasterization_2dgs needs per-view colours
        colors = colors[:, None].expand(B, C, *colors.shape[1:])
    # Backgrounds are blended here (rgb + (1 - alpha) bg, as gsplat's kernels do): gsplat 1.5.3
    # rejects [..., C, D] backgrounds in packed mode.
    kwargs = dict(near_plane=a.near, far_plane=a.far, render_mode="RGB+ED")
    args = (a.means, a.quats, a.scales, a.opacities, colors, a.viewmats, a.Ks, a.width, a.height)
    if a.mode == "3dgs":
        # gsplat 1.5.3's packed mode mis-composites some pixels when B > 1 (seen on an H200:
        # batched packed != per-scene renders); the unpacked path matches them.
        packed = B == 1
        out, alphas, _ = gsplat.rasterization(*args, eps2d=a.eps2d, packed=packed, **kwargs)
        normals = None
    else:  # 2dgs (RasterArgs checked the mode)
        out, alphas, normals_w, *_ = gsplat.rasterization_2dgs(*args, **kwargs)
        # gsplat returns Σ wᵢ nᵢ rotated to world; bring it back to the camera frame.
        normals = torch.einsum("bcij,bchwj->bchwi", a.viewmats[..., :3, :3], normals_w)
    rgb = out[..., :-1]
    if a.backgrounds is not None:
        rgb = rgb + (1.0 - alphas) * a.backgrounds[:, :, None, None, :]
    return {"colors": rgb, "alphas": alphas, "depths": out[..., -1:], "normals": normals}
