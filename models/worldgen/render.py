"""Rendering a multi-scale world: per-surfel rendering scale, coverage-aware opacity modulation.

Rendering scale. A surfel at ``x`` seen by a camera of focal ``f`` at z-depth ``z`` is magnified
``f / z`` pixels per world unit; relative to the base view (level 0: ``f_0``, ``z_0(x)``) that is
``ρ(x) = λ_0 + log2((f / z) / (f_0 / z_0(x)))``. In level ``l``'s own camera every surfel of a
``focal`` zoom has ``ρ = λ_l`` exactly (and a ``dolly`` zoom has it at the zoom target's depth),
and surfels of all levels at one point share one ``ρ`` — so WonderZoom's Prop. 1 (weights of
the levels sum to 1) holds point by point. (``models.surfels.render_surfels``' default,
``log2(f / z)``, leaves out the ``z_0`` normalisation: a level is then at weight 1 only at the
reference depth.)

Coverage. A finer level only exists inside its own view, so a coarse surfel fades out only where
a finer level replaces it: surfel ``x`` is covered by level ``j`` when its centre projects inside
level ``j``'s image and is not behind level ``j``'s registered depth (tolerance ``depth_tol``).
(Coarse surfels centred just outside a finer view keep full weight and may tint its outermost
pixel or two; counting them as covered instead would leave a half-transparent seam in zoom
frames between the levels, which is far more visible.) With
``m(x)`` the deepest level covering it (at least its own), its weight is the tent of
``models.surfels.modulation_weights`` over the truncated hierarchy ``λ_0 … λ_m(x)``: where all
levels cover, this is Prop. 1's modulation; at a finer level's border the coarse surfels stay
opaque instead of fading to the background.
"""

from __future__ import annotations

from dataclasses import fields

import torch
from torch import Tensor

from models.geometry import c2w_to_w2c
from models.render import RenderOutput, render_gaussians
from models.surfels import SurfelSet, modulation_weights

from .world import World, ZoomLevel


def _focal(K: Tensor) -> Tensor:
    return (K[..., 0, 0] * K[..., 1, 1]).sqrt()


def _camera_z(means: Tensor, c2w: Tensor) -> Tensor:
    """z-depth ``[N]`` of world points ``[N, 3]`` in camera ``c2w [4, 4]``."""
    R, t = c2w[:3, :3].to(means), c2w[:3, 3].to(means)
    return (means - t) @ R[:, 2]


def surfel_log_scales(
    means: Tensor, K: Tensor, c2w: Tensor, base_K: Tensor, base_c2w: Tensor, base_scale: float
) -> Tensor:
    """Rendering log scale ``ρ`` ``[N]`` (float64) of surfels ``means [N, 3]`` in camera
    ``K [3, 3]``/``c2w [4, 4]``, relative to the base view (module doc)."""
    x = means.to(torch.float64)
    z = _camera_z(x, c2w.to(torch.float64)).clamp_min(1e-12)
    z0 = _camera_z(x, base_c2w.to(torch.float64)).clamp_min(1e-12)
    f, f0 = _focal(K.to(torch.float64)), _focal(base_K.to(torch.float64))
    return base_scale + torch.log2(f / f0) + torch.log2(z0 / z)


def covered_by(means: Tensor, level: ZoomLevel, depth_tol: float = 0.05) -> Tensor:
    """Bool ``[N]``: surfels centred inside ``level``'s view and not behind its registered depth."""
    H, W = level.depth.shape[-2:]
    x = means.to(torch.float64)
    c2w = level.c2w.to(x)
    cam = (x - c2w[:3, 3]) @ c2w[:3, :3]
    z = cam[:, 2]
    front = z > 1e-12
    uv = (cam @ level.K.to(x).T)[:, :2] / z.clamp_min(1e-12)[:, None]
    inside = front & (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    col = uv[:, 0].clamp(0, W - 1).long()
    row = uv[:, 1].clamp(0, H - 1).long()
    d = level.depth.to(x)[row, col]
    return inside & ((d <= 0) | (z <= d * (1 + depth_tol)))


def coverage_levels(means: Tensor, levels: list[ZoomLevel], depth_tol: float = 0.05) -> Tensor:
    """Deepest level index ``[N]`` (long) covering each surfel (0 when none does)."""
    m = torch.zeros(means.shape[0], dtype=torch.long, device=means.device)
    for level in levels[1:]:
        m = torch.where(covered_by(means, level, depth_tol), level.index, m)
    return m


def world_coverage(world: World) -> Tensor:
    """``coverage_levels`` of all of a world's surfels."""
    return coverage_levels(world.surfels.means, world.levels)


def level_weights(native: Tensor, rho: Tensor, level_scales: Tensor, cover: Tensor) -> Tensor:
    """Coverage-aware tent weights ``[N]``: native level indices ``[N]`` (long), rendering scales
    ``rho`` ``[N]``, level log scales ``[L]``, deepest covering level ``cover`` ``[N]``."""
    top = torch.maximum(cover, native)
    lv = level_scales.to(device=rho.device, dtype=torch.float64)
    w = torch.zeros(native.shape[0], dtype=torch.float64, device=rho.device)
    for m in top.unique().tolist():
        sel = top == m
        w[sel] = modulation_weights(lv[native[sel]], rho[sel].to(torch.float64), lv[: m + 1])
    return w


def _pad_scales(s: SurfelSet) -> Tensor:
    return torch.cat([s.scales, s.scales.new_full((len(s), 1), 1e-6)], dim=-1)


def _empty_like(s: SurfelSet) -> SurfelSet:
    """One invisible surfel (the rasterisers need at least one)."""
    one = SurfelSet(*(getattr(s, f.name)[:0].new_zeros(1, *getattr(s, f.name).shape[1:])
                      for f in fields(SurfelSet)))  # fmt: skip
    one.quats[:, 0] = 1.0
    one.scales.fill_(1.0)
    return one


def rasterize_surfels(
    s: SurfelSet, K: Tensor, c2w: Tensor, width: int, height: int, **kwargs
) -> RenderOutput:
    """Plain 2DGS render of surfels (opacities as given) into one camera -> ``[1, ·, H, W]``."""
    if len(s) == 0:
        s = _empty_like(s)
    like = s.means  # cameras follow the surfels' device and dtype
    viewmat = c2w_to_w2c(c2w.to(torch.float64)).to(like)[None]
    return render_gaussians(
        s.means, s.quats, _pad_scales(s), s.opacities, s.colors, viewmat, K.to(like)[None],
        width, height, mode="2dgs", **kwargs,
    )  # fmt: skip


def modulated_surfels(
    world: World,
    K: Tensor,
    c2w: Tensor,
    cover: Tensor | None = None,
    log_scale: float | None = None,
    cull_eps: float = 1e-4,
) -> SurfelSet:
    """The world's surfels with opacities × coverage-aware weights for one camera, culled.
    ``log_scale``: one ``ρ`` for every surfel instead of the per-surfel one (viewer zoom)."""
    s = world.surfels
    base = world.levels[0]
    if cover is None:
        cover = world_coverage(world)
    if log_scale is None:
        rho = surfel_log_scales(s.means, K, c2w, base.K, base.c2w, base.log_scale)
    else:
        rho = torch.full((len(s),), float(log_scale), dtype=torch.float64, device=s.means.device)
    w = level_weights(world.native_level(), rho, world.level_log_scales(), cover)
    keep = w > cull_eps
    out = s.select(keep)
    out.opacities = out.opacities * w[keep].to(out.opacities.dtype)
    return out


def render_world(
    world: World,
    K: Tensor,
    c2w: Tensor,
    width: int | None = None,
    height: int | None = None,
    cover: Tensor | None = None,
    log_scale: float | None = None,
    cull_eps: float = 1e-4,
    **kwargs,
) -> RenderOutput:
    """Render the world into cameras ``K [C, 3, 3]``, ``c2w [C, 4, 4]`` (or one ``[3, 3]``/
    ``[4, 4]``) with coverage-aware opacity modulation -> ``RenderOutput`` ``[C, ·, H, W]``
    (rgb, alpha, expected z-depth, normals). Size defaults to the levels'. ``cover``: precomputed
    ``world_coverage`` (reuse it across frames); ``kwargs`` go to ``render_gaussians``
    (``background``, ``backend``, ``near``)."""
    H0, W0 = world.size
    width, height = width or W0, height or H0
    Ks, c2ws = (K[None], c2w[None]) if K.dim() == 2 else (K, c2w)
    if cover is None:
        cover = world_coverage(world)
    outs = []
    for Kc, cc in zip(Ks, c2ws):
        s = modulated_surfels(world, Kc, cc, cover, log_scale, cull_eps)
        outs.append(rasterize_surfels(s, Kc, cc, width, height, **kwargs))
    return RenderOutput(
        *(
            None if getattr(outs[0], f.name) is None
            else torch.cat([getattr(o, f.name) for o in outs])
            for f in fields(RenderOutput)
        )
    )  # fmt: skip
