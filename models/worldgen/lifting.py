"""Lifting a registered view to surfels: back-projection, 3D Gaussians → surfels, and a short
optimisation of new surfels against images.

Back-projection makes one surfel per (``stride``-th) pixel at its registered depth: tangent axes
along the surface (one-sided finite differences of the back-projected points, the shorter side, so
depth edges do not stretch them), the normal facing the camera, tangent standard deviations
``scale_factor`` × the pixel's footprint on the surface (capped at ``max_stretch`` × the
fronto-parallel footprint), the pixel's colour and opacity ``opacity``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from models.geometry import matrix_to_quaternion, quaternion_to_matrix, unproject
from models.surfels import SurfelSet

from .render import rasterize_surfels


def _shorter_difference(P: Tensor, dim: int) -> Tensor:
    """Per-pixel finite difference of points ``[H, W, 3]`` along ``dim`` (0: rows, 1: columns):
    the shorter of the forward and backward ones (the available one at the border)."""
    n = P.shape[dim]
    if n < 2:
        return torch.zeros_like(P)
    d = P.narrow(dim, 1, n - 1) - P.narrow(dim, 0, n - 1)  # d[i] = P[i+1] - P[i]
    fwd = torch.cat([d, d.narrow(dim, n - 2, 1)], dim)  # last pixel: backward
    bwd = torch.cat([d.narrow(dim, 0, 1), d], dim)  # first pixel: forward
    return torch.where(fwd.norm(dim=-1, keepdim=True) <= bwd.norm(dim=-1, keepdim=True), fwd, bwd)


def backproject_surfels(
    image: Tensor,
    depth: Tensor,
    K: Tensor,
    c2w: Tensor,
    valid: Tensor | None = None,
    stride: int = 1,
    scale_factor: float = 0.6,
    max_stretch: float = 4.0,
    opacity: float = 0.95,
) -> SurfelSet:
    """Surfels from ``image [3, H, W]`` and z-``depth [H, W]`` seen by ``K [3, 3]``, ``c2w [4, 4]``
    (module doc); ``valid [H, W]`` bool limits the pixels (default ``depth > 0``). Native scales 0
    (``models.surfels.add_level`` stamps them)."""
    H, W = depth.shape
    if image.shape[-2:] != (H, W):
        raise ValueError(f"image {tuple(image.shape)} and depth {tuple(depth.shape)} differ")
    dt, dev = torch.float64, image.device  # everything on the image's device
    depth = depth.to(dev)
    ok = (depth > 0) if valid is None else (valid.to(dev) & (depth > 0))
    Kd, d, rgb, c2w = K.to(dev, dt), depth.to(dt), image, c2w.to(dev, dt)
    if stride > 1:  # one surfel per stride x stride block: block means, the block grid's camera
        if H % stride or W % stride:
            raise ValueError(f"image {H}x{W} is not divisible by stride {stride}")
        pool = lambda x: F.avg_pool2d(x[None], stride)[0]  # noqa: E731
        full = pool(ok[None].to(dt))[0] == 1  # blocks whose pixels all have depth
        d = pool(torch.where(ok, d, 0.0)[None])[0]
        rgb, ok = pool(image), full
        Kd = Kd.clone()
        Kd[:2] = Kd[:2] / stride
    P = unproject(d, Kd, c2w.to(dt))  # [h, w, 3]
    du, dv = _shorter_difference(P, 1), _shorter_difference(P, 0)
    axis = c2w[:3, 2].to(dt)
    n = torch.linalg.cross(du, dv, dim=-1)
    n_ok = n.norm(dim=-1, keepdim=True) > 1e-20
    n = torch.where(n_ok, F.normalize(n, dim=-1), -axis.expand_as(n))
    facing = ((P - c2w[:3, 3].to(dt)) * n).sum(-1, keepdim=True) < 0
    n = torch.where(facing, n, -n)
    tu = du - (du * n).sum(-1, keepdim=True) * n  # in the surfel's plane
    fallback = torch.linalg.cross(n, c2w[:3, 1].to(dt).expand_as(n), dim=-1)
    tu = F.normalize(torch.where(tu.norm(dim=-1, keepdim=True) > 1e-20, tu, fallback), dim=-1)
    tv = torch.linalg.cross(n, tu, dim=-1)
    R = torch.stack([tu, tv, n], dim=-1)  # columns: tangent u, tangent v, normal
    foot = d / float((Kd[0, 0] * Kd[1, 1]).sqrt())  # fronto-parallel footprint
    su = du.norm(dim=-1).clamp(max=max_stretch * foot).maximum(foot)
    sv = dv.norm(dim=-1).clamp(max=max_stretch * foot).maximum(foot)
    scales = scale_factor * torch.stack([su, sv], dim=-1)
    m = ok
    N = int(m.sum())
    f32 = torch.float32
    return SurfelSet(
        P[m].to(f32),
        matrix_to_quaternion(R[m]).to(f32),
        scales[m].to(f32),
        torch.full((N,), opacity, dtype=f32, device=depth.device),
        rgb.permute(1, 2, 0)[m].to(f32),
        torch.zeros(N, dtype=f32, device=depth.device),
    )


def gaussians_to_surfels(
    means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor
) -> SurfelSet:
    """3D Gaussians (``[N, 3]``, ``[N, 4]`` wxyz, ``[N, 3]`` std-devs, ``[N]``, ``[N, D]``) -> 2D
    surfels: the two largest axes become the tangent axes (largest first), the smallest the normal
    (a right-handed frame); native scales 0."""
    R = quaternion_to_matrix(quats.to(torch.float64))
    order = scales.argsort(dim=-1, descending=True)  # [N, 3]
    cols = torch.gather(R, 2, order[:, None, :].expand(-1, 3, -1))
    a, b = cols[..., 0], cols[..., 1]
    frame = torch.stack([a, b, torch.linalg.cross(a, b, dim=-1)], dim=-1)
    s = torch.gather(scales, 1, order[:, :2])
    return SurfelSet(
        means.float(),
        matrix_to_quaternion(frame).float(),
        s.float(),
        opacities.float(),
        colors.float(),
        torch.zeros(means.shape[0], dtype=torch.float32, device=means.device),
    )


def fit_surfels(
    surfels: SurfelSet,
    images: Tensor,
    K: Tensor,
    c2w: Tensor,
    steps: int = 20,
    lr: float = 0.05,
    aux_from: int = 1,
    max_offset: float = 0.05,
    background: Tensor | None = None,
    backend: str = "auto",
    progress=None,
) -> tuple[SurfelSet, list[float]]:
    """A short optimisation (Adam) of new surfels against ``images [V, 3, H, W]`` at cameras
    ``K [V, 3, 3]``, ``c2w [V, 4, 4]``: colours, opacities, tangent scales (all through
    unconstrained parameters) and a relative offset (at most ``max_offset``) of each centre along
    its view ray from camera 0.
    Views ``≥ aux_from`` (auxiliary views) count only where the surfels render (detached alpha),
    since the rest of those views shows content of other levels. Loss: MSE + 0.2·L1 per view,
    averaged. Returns the fitted surfels (detached; native scales kept) and the loss per step."""
    if steps <= 0 or len(surfels) == 0:
        return surfels, []
    V, _, H, W = images.shape
    s0 = surfels
    eps = 1e-4
    color_logit = torch.logit(s0.colors.clamp(eps, 1 - eps)).clone().requires_grad_(True)
    op_logit = torch.logit(s0.opacities.clamp(eps, 1 - eps)).clone().requires_grad_(True)
    log_scale = s0.scales.clamp_min(1e-12).log().clone().requires_grad_(True)
    offset = torch.zeros(len(s0), device=s0.means.device, requires_grad=True)
    centre = c2w[0, :3, 3].to(s0.means)
    along = s0.means - centre  # centres move along their view ray by at most ±max_offset
    opt = torch.optim.Adam([color_logit, op_logit, log_scale, offset], lr=lr)
    losses = []

    def current() -> SurfelSet:
        means = centre + along * (1 + max_offset * offset.tanh())[:, None]
        return SurfelSet(means, s0.quats, log_scale.exp(), torch.sigmoid(op_logit),
                         torch.sigmoid(color_logit), s0.native_scale)  # fmt: skip

    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            s = current()
            loss = images.new_zeros(())
            for v in range(V):
                out = rasterize_surfels(s, K[v], c2w[v], W, H, background=background,
                                        backend=backend)  # fmt: skip
                err = out.rgb[0] - images[v]
                if v >= aux_from:
                    err = err * out.alpha[0].detach()
                loss = loss + err.square().mean() + 0.2 * err.abs().mean()
            loss = loss / V
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(1)
    with torch.no_grad():
        s = current()
    return SurfelSet(*(x.detach() for x in (s.means, s.quats, s.scales, s.opacities, s.colors,
                                            s.native_scale))), losses  # fmt: skip
