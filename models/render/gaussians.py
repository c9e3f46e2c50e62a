"""One Gaussian-rendering API: gsplat on CUDA, a numerically equivalent pure-torch path elsewhere.

Conventions (docs/conventions.md): OpenCV cameras, ``K`` in pixels, pixel centres at ``+0.5``.
Cameras are given as world-to-camera ``viewmats`` like gsplat; ``viewmats_from_c2w`` converts the
project's ``c2w``. Outputs are channel-first images ``[..., C, ch, H, W]``.

Both backends share gsplat 1.5.3's semantics:

- 3dgs: EWA projection with a ``eps2d`` px² screen-space blur added to the 2D covariance,
  ``alpha = min(0.999, o · exp(-½ dᵀ Σ⁻¹ d))``.
- 2dgs: surfels with tangent axes ``R[:, :2] · scales[:2]``; the kernel is evaluated at the
  ray-splat intersection ``(u, v)``, ``G = exp(-½ min(u² + v², 2 |p - m|²))`` (fixed screen
  low-pass of variance ½ px²; ``eps2d`` is unused, as in gsplat).
- contributions with ``alpha < 1/255`` are skipped; compositing is front to back by camera z and a
  pixel stops before the Gaussian that would take its transmittance to ``<= 1e-4``.
- ``depth`` is the alpha-normalised expected z of the Gaussian centres, ``Σ wᵢ zᵢ / α`` (0 where
  α = 0); ``normals`` (2dgs) are ``Σ wᵢ nᵢ`` in the camera frame, each ``nᵢ`` a unit surfel
  normal flipped to face the camera (a fronto-parallel surfel has ``n = (0, 0, -1)``); divide by
  ``alpha`` for a unit normal, rotate with ``c2w[:3, :3]`` for world normals.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from models.geometry import c2w_to_w2c

from .gaussians_args import RasterArgs, check_mode
from .gaussians_gsplat import gsplat_available, rasterize_gsplat
from .gaussians_torch import rasterize_torch

BACKENDS = ("auto", "gsplat", "torch")


@dataclass
class RenderOutput:
    """Rendered images, batch dims ``[...]`` of the Gaussians then ``C`` cameras.

    rgb ``[..., C, D, H, W]`` (D = colour channels, 3 for RGB), alpha ``[..., C, 1, H, W]``,
    depth ``[..., C, 1, H, W]``, normals ``[..., C, 3, H, W]`` (2dgs) or None (3dgs).
    """

    rgb: Tensor
    alpha: Tensor
    depth: Tensor
    normals: Tensor | None = None


def viewmats_from_c2w(c2w: Tensor) -> Tensor:
    """Camera-to-world ``[..., 4, 4]`` -> world-to-camera ``viewmats`` ``[..., 4, 4]``."""
    return c2w_to_w2c(c2w)


def resolve_backend(backend: str, device: torch.device) -> str:
    """'auto' -> 'gsplat' on CUDA when the extension loads, else 'torch'."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "gsplat" if device.type == "cuda" and gsplat_available() else "torch"
    if backend == "gsplat" and not (device.type == "cuda" and gsplat_available()):
        raise RuntimeError("backend='gsplat' needs CUDA tensors and gsplat's CUDA extension")
    return backend


def render_gaussians(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    near: float = 0.01,
    far: float = 1e10,
    background: Tensor | None = None,
    mode: str = "3dgs",
    backend: str = "auto",
    eps2d: float = 0.3,
) -> RenderOutput:
    """Render Gaussians ``[..., N]`` into ``C`` cameras (differentiable in both backends).

    means ``[..., N, 3]`` (world), quats ``[..., N, 4]`` (wxyz, any norm), scales ``[..., N, 3]``
    (standard deviations; 2dgs uses the first two), opacities ``[..., N]`` in [0, 1], colors
    ``[..., N, D]`` or per view ``[..., C, N, D]``, viewmats ``[..., C, 4, 4]`` (world-to-camera),
    Ks ``[..., C, 3, 3]``, background ``[D]`` or ``[..., C, D]`` (None: black). Leading batch
    dims ``...`` (e.g. scenes) must match across all inputs; each scene is rendered only into its
    own cameras.
    """
    check_mode(mode)
    batch = means.shape[:-2]
    N = means.shape[-2]
    C = viewmats.shape[-3]
    D = colors.shape[-1]
    if viewmats.shape[:-3] != batch or Ks.shape[:-3] != batch:
        raise ValueError(f"batch dims differ: means {means.shape}, viewmats {viewmats.shape}")
    B = 1
    for b in batch:
        B *= b
    per_view = colors.dim() == means.dim() + 1
    colors = colors.reshape(B, C, N, D) if per_view else colors.reshape(B, 1, N, D)
    bg = None
    if background is not None:
        bg = torch.broadcast_to(background, (*batch, C, D)).reshape(B, C, D)

    chosen = resolve_backend(backend, means.device)
    if chosen == "gsplat":
        fn = rasterize_gsplat
        colors = colors if per_view else colors[:, 0]
    else:
        fn = rasterize_torch
        colors = colors.expand(B, C, N, D)
    args = RasterArgs(
        means.reshape(B, N, 3),
        quats.reshape(B, N, 4),
        scales.reshape(B, N, 3),
        opacities.reshape(B, N),
        colors,
        viewmats.reshape(B, C, 4, 4),
        Ks.reshape(B, C, 3, 3),
        width,
        height,
        near=near,
        far=far,
        backgrounds=bg,
        mode=mode,
        eps2d=eps2d,
    )
    if chosen == "gsplat":
        args = args.map_tensors(lambda x: x.float().contiguous())
    out = fn(args)

    def chw(x: Tensor | None) -> Tensor | None:
        if x is None:
            return None
        return x.permute(0, 1, 4, 2, 3).reshape(*batch, C, x.shape[-1], height, width)

    return RenderOutput(
        chw(out["colors"]), chw(out["alphas"]), chw(out["depths"]), chw(out["normals"])
    )
