"""Scale-adaptive Gaussian surfels (WonderZoom §3.1): 2D Gaussians with a native scale each,
opacity-modulated by the log-scale difference between their native and the rendering scale.

Scale. A *log scale* is ``ρ = log2(pixels per world unit)`` at which content is seen: a camera
with focal length ``f`` (px) sees a point at z-depth ``z`` at ``ρ = log2(f / z)``
(``camera_log_scale``). Zooming in by a factor ``s`` raises ``ρ`` by ``log2 s``; a zoom stack
with factor ``p`` has level log scales ``λ_l = λ_0 + l·log2 p``. A surfel's ``native_scale`` is
the ``λ_l`` of the level that created it; the hierarchy is the sorted list ``λ_0 < … < λ_{L-1}``.

Modulation (Prop. 1). A level-``l`` surfel rendered at scale ``ρ`` gets weight ``w_l(ρ)``, the
piecewise-linear "tent" in ``ρ`` that is 1 at ``λ_l``, falls linearly to 0 at the adjacent levels
``λ_{l±1}``, and stays 1 beyond the ends of the hierarchy (``ρ ≤ λ_0`` for ``l = 0``,
``ρ ≥ λ_{L-1}`` for the finest level). These are the linear-interpolation basis functions on the
level grid, so ``Σ_l w_l(ρ) = 1`` for every ``ρ``; between ``λ_l`` and ``λ_{l+1}`` only the two
adjacent levels are non-zero (coarse fades out as fine fades in). Opacities are multiplied by
the weight; surfels with weight ``≤ cull_eps`` are culled before rasterisation. (Each finer
level is assumed to cover the views at which coarser ones fade out, as WonderZoom generates it
for the zoomed-in view.)

Rendering uses ``models.render.render_gaussians(mode="2dgs")`` (gsplat on CUDA, torch on CPU).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from models.render import RenderOutput, render_gaussians


@dataclass
class SurfelSet:
    """``N`` surfels: means ``[N, 3]`` (world), quats ``[N, 4]`` (wxyz; the first two rotated axes
    are the tangent axes), scales ``[N, 2]`` (tangent std-devs), opacities ``[N]``, colors
    ``[N, D]``, native_scale ``[N]`` (log scale ``λ`` of the creating level)."""

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    colors: Tensor
    native_scale: Tensor

    def __post_init__(self):
        N = self.means.shape[0]
        for f in fields(self):
            if getattr(self, f.name).shape[0] != N:
                raise ValueError(
                    f"{f.name} has {getattr(self, f.name).shape[0]} rows, expected {N}"
                )
        if self.scales.shape[-1] != 2:
            raise ValueError(
                f"scales must be [N, 2] tangent scales, got {tuple(self.scales.shape)}"
            )

    def __len__(self) -> int:
        return self.means.shape[0]

    def select(self, idx: Tensor) -> SurfelSet:
        """Subset by a bool mask or index tensor ``[N]``."""
        return SurfelSet(*(getattr(self, f.name)[idx] for f in fields(self)))

    def to(self, *args, **kwargs) -> SurfelSet:
        return SurfelSet(*(getattr(self, f.name).to(*args, **kwargs) for f in fields(self)))


def merge(*sets: SurfelSet) -> SurfelSet:
    """Concatenate surfel sets (order kept)."""
    return SurfelSet(*(torch.cat([getattr(s, f.name) for s in sets]) for f in fields(SurfelSet)))


def add_level(surfels: SurfelSet, new: SurfelSet, native_scale: float) -> SurfelSet:
    """Append ``new`` surfels created at log scale ``native_scale`` (additive: the existing ones
    are returned unchanged, first)."""
    stamped = SurfelSet(
        new.means,
        new.quats,
        new.scales,
        new.opacities,
        new.colors,
        torch.full_like(new.native_scale, float(native_scale)),
    )
    return merge(surfels, stamped)


def camera_log_scale(K: Tensor, depth: Tensor) -> Tensor:
    """``ρ = log2(f / z)`` for intrinsics ``K [..., 3, 3]`` and z-depths ``depth [..., N]``
    (``f = √(fx·fy)``) -> ``[..., N]``."""
    f = (K[..., 0, 0] * K[..., 1, 1]).sqrt()
    return torch.log2(f[..., None] / depth)


def modulation_weights(
    native_log_scale: Tensor, render_log_scale: float | Tensor, level_log_scales: Tensor
) -> Tensor:
    """Tent weights ``[N]`` of surfels with native scales ``[N]`` (each one of the levels
    ``level_log_scales [L]``, strictly increasing) at rendering scale(s) ``ρ`` (scalar or ``[N]``).
    Σ over levels = 1 at every ``ρ`` (Prop. 1). Computed in float64, returned in the input dtype."""
    lv = torch.as_tensor(level_log_scales, dtype=torch.float64, device=native_log_scale.device)
    if lv.dim() != 1 or lv.numel() == 0 or (lv.numel() > 1 and (lv.diff() <= 0).any()):
        raise ValueError("level_log_scales must be a non-empty, strictly increasing 1D tensor")
    nat = native_log_scale.to(torch.float64)
    rho = torch.as_tensor(render_log_scale, dtype=torch.float64, device=nat.device).expand_as(nat)
    idx = (nat[:, None] - lv[None, :]).abs().argmin(dim=1)
    tol = 1e-6 * max(1.0, float(lv.abs().max()))
    if ((lv[idx] - nat).abs() > tol).any():
        raise ValueError("every native_scale must be one of level_log_scales")
    L = lv.numel()
    inf = torch.tensor([float("inf")], dtype=torch.float64, device=nat.device)
    lo = torch.cat([-inf, lv[:-1]])[idx]  # previous level (−∞ for the coarsest)
    hi = torch.cat([lv[1:], inf])[idx]  # next level (+∞ for the finest)
    c = lv[idx]
    up = torch.where(idx > 0, (rho - lo) / (c - lo), torch.ones_like(rho))
    down = torch.where(idx < L - 1, (hi - rho) / (hi - c), torch.ones_like(rho))
    w = torch.where(rho <= c, up, down).clamp(0.0, 1.0)
    return w.to(native_log_scale.dtype)


def modulate(
    surfels: SurfelSet,
    level_log_scales: Tensor,
    render_log_scale: float | Tensor,
    cull_eps: float = 1e-4,
) -> SurfelSet:
    """Surfels with opacities × weights, those with weight ``≤ cull_eps`` removed."""
    w = modulation_weights(surfels.native_scale, render_log_scale, level_log_scales)
    keep = w > cull_eps
    out = surfels.select(keep)
    out.opacities = out.opacities * w[keep].to(out.opacities.dtype)
    return out


def _transparent(like: SurfelSet) -> SurfelSet:
    """One invisible surfel (opacity 0) with ``like``'s dtypes and devices."""
    s = SurfelSet(*(getattr(like, f.name)[:0].new_zeros(1, *getattr(like, f.name).shape[1:])
                    for f in fields(SurfelSet)))  # fmt: skip
    s.quats[:, 0] = 1.0
    s.scales.fill_(1.0)
    return s


def _render(s: SurfelSet, viewmats, Ks, width, height, **kw) -> RenderOutput:
    if len(s) == 0:  # everything culled: the renderer needs at least one surfel
        s = _transparent(s)
    pad = s.scales.new_full((len(s), 1), 1e-6)  # 2dgs ignores the third axis
    scales = torch.cat([s.scales, pad], dim=-1)
    return render_gaussians(
        s.means, s.quats, scales, s.opacities, s.colors, viewmats, Ks, width, height,
        mode="2dgs", **kw,
    )  # fmt: skip


def render_surfels(
    surfels: SurfelSet,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    level_log_scales: Tensor,
    render_log_scale: float | Tensor | None = None,
    cull_eps: float = 1e-4,
    **render_kwargs,
) -> RenderOutput:
    """Render modulated surfels into ``C`` cameras (viewmats ``[C, 4, 4]`` world-to-camera, Ks
    ``[C, 3, 3]``) -> ``RenderOutput`` with ``[C, ·, H, W]`` maps.

    render_log_scale: one ``ρ`` for all surfels (scalar, or ``[N]``), or None: per camera and per
    surfel from its z-depth, ``camera_log_scale(K, z)`` (one rasterisation per camera then).
    ``render_kwargs`` go to ``render_gaussians`` (``background``, ``backend``, ``near``, ``far``).
    """
    if render_log_scale is not None:
        s = modulate(surfels, level_log_scales, render_log_scale, cull_eps)
        return _render(s, viewmats, Ks, width, height, **render_kwargs)
    outs = []
    for c in range(viewmats.shape[0]):
        vm, K = viewmats[c], Ks[c]
        z = surfels.means @ vm[2, :3].to(surfels.means) + vm[2, 3].to(surfels.means)
        rho = camera_log_scale(K.to(z), z.clamp_min(1e-8))
        s = modulate(surfels, level_log_scales, rho, cull_eps)
        outs.append(_render(s, vm[None], K[None], width, height, **render_kwargs))
    return RenderOutput(
        *(
            None if getattr(outs[0], f.name) is None
            else torch.cat([getattr(o, f.name) for o in outs])
            for f in fields(RenderOutput)
        )
    )  # fmt: skip
