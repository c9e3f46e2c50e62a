"""Depth registration (WonderZoom §3.2): make the new level's depth stick to the coarse geometry.

1. **Reliability** of the coarse render at the zoom camera: weight ``w = clamp((α − α_min) /
   (1 − α_min), 0, 1)`` from its alpha (coverage), zero where it has no depth and at depth edges
   (relative depth step to a neighbour above ``edge_tol``: the expected depth mixes surfaces there).
2. **Alignment**: scale ``s`` and shift ``t`` of the prediction by weighted least squares over the
   reliable pixels, ``min Σ w (s·x + t − y)²`` in closed form (float64) — in depth (``y`` = coarse
   depth) for depth predictions, in inverse depth (``y = 1 / coarse depth``) for disparities.
3. **Refinement**: a per-pixel log-depth residual ``r`` (``d = d_aligned · exp(r)``), parameterised
   as a sum of bilinearly upsampled grids from ``H × W`` down to about 4 × 4 so Adam propagates it
   quickly, minimising ``Σ w (log d − log d_coarse)² / Σ w + λ · mean |∇r|²``: where the coarse
   geometry is reliable the depth is pulled onto it, elsewhere the correction continues smoothly
   and the prediction's own relative detail (which ``r`` does not touch) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .depth import DepthPrediction


@dataclass
class Registration:
    """Registered z-depth ``depth [H, W]``; ``aligned [H, W]`` after scale/shift only;
    ``weights [H, W]`` (reliability); ``scale``/``shift`` of the alignment; json-able ``stats``."""

    depth: Tensor
    aligned: Tensor
    weights: Tensor
    scale: float
    shift: float
    stats: dict = field(default_factory=dict)


def reliability_weights(
    alpha: Tensor, depth: Tensor, min_alpha: float = 0.5, edge_tol: float = 0.1
) -> Tensor:
    """Weights ``[H, W]`` in [0, 1] of a coarse render's ``alpha [H, W]`` and ``depth [H, W]``."""
    w = ((alpha - min_alpha) / (1.0 - min_alpha)).clamp(0.0, 1.0) * (depth > 0)
    if edge_tol > 0:
        d = depth.clamp_min(1e-12)
        step = torch.zeros_like(depth)
        dx = ((d[:, 1:] - d[:, :-1]).abs() / torch.minimum(d[:, 1:], d[:, :-1])).float()
        dy = ((d[1:] - d[:-1]).abs() / torch.minimum(d[1:], d[:-1])).float()
        step[:, 1:] = torch.maximum(step[:, 1:], dx)
        step[:, :-1] = torch.maximum(step[:, :-1], dx)
        step[1:] = torch.maximum(step[1:], dy)
        step[:-1] = torch.maximum(step[:-1], dy)
        w = w * (step <= edge_tol)
    return w


def align_scale_shift(
    x: Tensor, y: Tensor, w: Tensor, with_shift: bool = True
) -> tuple[float, float]:
    """Weighted least-squares ``(s, t)`` minimising ``Σ w (s x + t − y)²`` (float64); without
    shift (or when ``x`` is constant over the weights) a scale only. ValueError without weight."""
    x, y, w = (v.to(torch.float64).flatten() for v in (x, y, w))
    sw = w.sum()
    if not sw > 0:
        raise ValueError("depth registration: no reliable pixel in the coarse render")
    mx, my = (w * x).sum() / sw, (w * y).sum() / sw
    var = (w * (x - mx) ** 2).sum() / sw
    if with_shift and var > 1e-20 * max(float(mx**2), 1e-30):
        s = (w * (x - mx) * (y - my)).sum() / sw / var
        return float(s), float(my - s * mx)
    s = (w * x * y).sum() / (w * x * x).sum().clamp_min(1e-300)
    return float(s), 0.0


def _pyramid_shapes(H: int, W: int, min_size: int = 4) -> list[tuple[int, int]]:
    shapes = [(H, W)]
    while min(shapes[-1]) // 2 >= min_size:
        h, w = shapes[-1]
        shapes.append((h // 2, w // 2))
    return shapes


def refine_depth(
    aligned: Tensor,
    coarse: Tensor,
    weights: Tensor,
    steps: int = 100,
    lr: float = 0.02,
    smooth_weight: float = 1.0,
) -> tuple[Tensor, list[float]]:
    """Refinement (module doc, step 3) of ``aligned [H, W]`` towards ``coarse [H, W]`` with
    ``weights [H, W]`` -> (refined depth ``[H, W]``, loss per step)."""
    H, W = aligned.shape
    if steps <= 0 or not weights.sum() > 0:
        return aligned.clone(), []
    dev = aligned.device
    log_a = aligned.detach().clamp_min(1e-12).log().float()
    log_c = coarse.detach().clamp_min(1e-12).log().float()
    w = weights.detach().float()
    grids = [torch.zeros(1, 1, h, ww, device=dev, requires_grad=True)
             for h, ww in _pyramid_shapes(H, W)]  # fmt: skip
    opt = torch.optim.Adam(grids, lr=lr)
    losses = []

    def residual() -> Tensor:
        r = grids[0]
        for g in grids[1:]:
            r = r + F.interpolate(g, size=(H, W), mode="bilinear", align_corners=False)
        return r[0, 0]

    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            r = residual()
            data = (w * (log_a + r - log_c).square()).sum() / w.sum()
            smooth = (r[:, 1:] - r[:, :-1]).square().mean() + (r[1:] - r[:-1]).square().mean()
            loss = data + smooth_weight * smooth
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    with torch.no_grad():
        return (log_a + residual()).exp().to(aligned.dtype), losses


def register_depth(
    pred: DepthPrediction,
    coarse_depth: Tensor,
    coarse_alpha: Tensor,
    min_alpha: float = 0.5,
    edge_tol: float = 0.1,
    steps: int = 100,
    lr: float = 0.02,
    smooth_weight: float = 1.0,
    with_shift: bool = True,
) -> Registration:
    """Register a prediction ``[H, W]`` to the coarse render (``coarse_depth``, ``coarse_alpha``
    ``[H, W]`` at the same camera): reliability, alignment, refinement (module doc)."""
    if pred.value.shape != coarse_depth.shape:
        raise ValueError(
            f"depth prediction {tuple(pred.value.shape)} and coarse depth "
            f"{tuple(coarse_depth.shape)} differ in size"
        )
    # registration never differentiates through the renderer or the estimator
    coarse_depth, coarse_alpha = coarse_depth.detach(), coarse_alpha.detach()
    w = reliability_weights(coarse_alpha, coarse_depth, min_alpha, edge_tol) * pred.mask().detach()
    x = pred.value.detach()
    y = coarse_depth if pred.kind == "depth" else 1.0 / coarse_depth.clamp_min(1e-12)
    s, t = align_scale_shift(x, y, w, with_shift)
    lin = s * x.to(torch.float64) + t
    floor = float(coarse_depth[w > 0].min()) * 0.05  # aligned depth stays positive
    if pred.kind == "depth":
        aligned = lin.clamp_min(floor)
    else:
        aligned = 1.0 / lin.clamp_min(1.0 / (float(coarse_depth[w > 0].max()) * 20))
        aligned = aligned.clamp_min(floor)
    aligned = aligned.to(coarse_depth.dtype)
    refined, losses = refine_depth(aligned, coarse_depth, w, steps, lr, smooth_weight)
    rel = lambda d: float(  # noqa: E731  weighted RMS relative error on reliable pixels
        ((w * ((d - coarse_depth) / coarse_depth.clamp_min(1e-12)).square()).sum() / w.sum()).sqrt()
    )
    stats = {
        "scale": s,
        "shift": t,
        "space": pred.kind,
        "reliable_fraction": float((w > 0).float().mean()),
        "rel_rmse_aligned": rel(aligned),
        "rel_rmse_refined": rel(refined),
        "refine_steps": len(losses),
        "refine_loss": [losses[0], losses[-1]] if losses else [],
    }
    return Registration(refined, aligned, w, s, t, stats)
