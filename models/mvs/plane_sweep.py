"""Plane-sweep stereo for one reference view against S source views (known K, c2w).

Fronto-parallel planes of the reference camera, sampled uniformly in inverse depth (or depth),
warp every source into the reference view (backproject at the plane's depth, project into the
source, bilinear ``grid_sample`` with zeros padding + validity mask). A robust windowed matching
cost per source view is reduced over views by the mean of the best ``top_k`` (occlusion-robust),
the winner-take-all plane is refined by a parabola fit in the sweep parameter, and a confidence
in [0, 1] comes from the cost curve's peak ratio and the number of valid source views.

Conventions (docs/conventions.md): OpenCV cameras, ``c2w`` ``[..., 4, 4]``, ``K`` in pixels with
pixel centres at ``+0.5``, z-depth, 0 = invalid. Everything runs on the input tensors' device.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from models.geometry import camera_directions, relative_pose

ROBUST_COSTS = ("truncated_zncc", "census", "truncated_sad")
_GRAY = (0.299, 0.587, 0.114)


def depth_hypotheses(
    near: float, far: float, num_depths: int, inverse_depth: bool = True, *, dtype=None, device=None
) -> Tensor:
    """Plane depths ``[D]`` from ``near`` to ``far``, uniform in inverse depth (or in depth)."""
    if not 0 < near < far:
        raise ValueError(f"need 0 < near < far, got ({near}, {far})")
    if num_depths < 2:
        raise ValueError("num_depths must be >= 2")
    s = torch.linspace(0.0, 1.0, num_depths, dtype=dtype, device=device)
    if inverse_depth:
        return 1.0 / (1.0 / near + s * (1.0 / far - 1.0 / near))
    return near + s * (far - near)


def _sweep_param_to_depth(s: Tensor, near: float, far: float, D: int, inverse_depth: bool):
    """Continuous plane index ``s`` (any shape) -> depth, inverse of ``depth_hypotheses``."""
    t = s / (D - 1)
    if inverse_depth:
        return 1.0 / (1.0 / near + t * (1.0 / far - 1.0 / near))
    return near + t * (far - near)


def _warp_setup(K_ref: Tensor, c2w_ref: Tensor, K_src: Tensor, c2w_src: Tensor, H, W, Hs, Ws):
    """Per-source linear maps to ``grid_sample`` coordinates: ``(gx z, gy z, z) = d A + b``.

    ``A`` ``[S, H, W, 3]`` = ``N K_src R ray_ref`` and ``b`` ``[S, 3]`` = ``N K_src t`` with
    ``[R | t]`` the reference-to-source camera transform and ``N`` the pixel -> ``[-1, 1]`` map of
    ``align_corners=False`` (``g = 2 u / W - 1``: pixel centres ``u = i + 0.5`` land exactly).
    """
    rays = camera_directions(K_ref, H, W)  # [H, W, 3], z = 1
    T = relative_pose(c2w_src, c2w_ref[None])  # [S, 4, 4]: ref camera -> source camera
    N = torch.tensor([[2 / Ws, 0, -1], [0, 2 / Hs, -1], [0, 0, 1]], dtype=K_src.dtype)
    NK = N.to(K_src.device) @ K_src
    A = torch.einsum("sij,hwj->shwi", NK @ T[:, :3, :3], rays)
    b = (NK @ T[:, :3, 3:4])[..., 0]
    return A, b


def _warp_chunk(src: Tensor, A: Tensor, b: Tensor, depths: Tensor):
    """Warp sources ``[S, C, Hs, Ws]`` to the reference at planes ``depths`` ``[Dc]``.

    Returns warped ``[S, C, Dc, H, W]`` (finite, arbitrary where invalid) and validity
    ``[S, Dc, H, W]`` (bool: in front of the source camera and at least half a pixel inside).
    """
    S, C, Hs, Ws = src.shape
    _, H, W, _ = A.shape
    Dc = depths.shape[0]
    gz = depths[None, :, None, None, None] * A[:, None] + b[:, None, None, None, :]
    z = gz[..., 2]
    grid = gz[..., :2] / z.clamp_min(1e-8)[..., None]  # z <= 0 -> far outside: zeros padding
    valid = (z > 1e-8) & (grid[..., 0].abs() <= 1 - 1 / Ws) & (grid[..., 1].abs() <= 1 - 1 / Hs)
    out = F.grid_sample(
        src,
        grid.reshape(S, Dc * H, W, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return out.view(S, C, Dc, H, W), valid


def warp_sources(
    src_images: Tensor,
    K_ref: Tensor,
    c2w_ref: Tensor,
    K_src: Tensor,
    c2w_src: Tensor,
    depths: Tensor,
    hw: tuple[int, int],
) -> tuple[Tensor, Tensor]:
    """Plane-induced warp of sources into the reference view.

    ``src_images`` ``[S, C, Hs, Ws]``, ``K_ref`` ``[3, 3]``, ``c2w_ref`` ``[4, 4]``, ``K_src``
    ``[S, 3, 3]``, ``c2w_src`` ``[S, 4, 4]``, ``depths`` ``[D]`` (fronto-parallel planes of the
    reference camera), ``hw`` the reference size. Returns warped ``[D, S, C, H, W]`` and validity
    ``[D, S, H, W]`` (bool).
    """
    dt = src_images.dtype
    cams = (K_ref.to(dt), c2w_ref.to(dt), K_src.to(dt), c2w_src.to(dt))
    A, b = _warp_setup(*cams, *hw, *src_images.shape[-2:])
    out, valid = _warp_chunk(src_images, A, b, depths.to(dt))
    out = out * valid[:, None]
    return out.permute(2, 0, 1, 3, 4), valid.permute(1, 0, 2, 3)


def _box(x: Tensor, window: int) -> Tensor:
    """Separable box *sum* over the last two dims of ``x`` ``[..., H, W]`` (zeros outside).

    Callers use ratios of box sums (masked means), so the border treatment cancels out.
    """
    for dim in (-1, -2):
        out, n = x.clone(), x.shape[dim]
        for i in range(1, min(window // 2 + 1, n)):
            out.narrow(dim, 0, n - i).add_(x.narrow(dim, i, n - i))
            out.narrow(dim, i, n - i).add_(x.narrow(dim, 0, n - i))
        x = out
    return x


def _gray(img: Tensor) -> Tensor:
    """``[..., 3, H, W]`` -> ``[..., 1, H, W]`` luminance (other channel counts: mean)."""
    if img.shape[-3] == 3:
        w = torch.tensor(_GRAY, dtype=img.dtype, device=img.device)
        return (img * w[:, None, None]).sum(-3, keepdim=True)
    return img.mean(-3, keepdim=True)


def _zncc_cost(x: Tensor, y: Tensor, m: Tensor, window: int, trunc: float, eps: float = 1e-6):
    """Truncated ``1 - ZNCC`` over the window, statistics over valid samples only (box sums).

    ``x`` ``[1, 1, H, W]`` reference gray, ``y`` ``[S, Dc, H, W]`` warped gray, ``m`` float validity
    ``[S, Dc, H, W]``. Returns cost ``[S, Dc, H, W]`` in ``[0, trunc]`` and the valid count
    per window ``[S, Dc, H, W]``.
    """
    pm = _box(m, window).clamp_min(1e-6)
    mx, my = m * x, m * y
    ex, ey = _box(mx, window) / pm, _box(my, window) / pm
    vx = (_box(mx * x, window) / pm - ex * ex).clamp_min(0)
    vy = (_box(my * y, window) / pm - ey * ey).clamp_min(0)
    cov = _box(mx * y, window) / pm - ex * ey
    zncc = cov / torch.sqrt(vx * vy + eps**2)
    return (1.0 - zncc).clamp(0.0, trunc), pm


def _census_cost(x: Tensor, y: Tensor, m: Tensor, window: int):
    """Census (``window`` x ``window``) Hamming distance in [0, 1], box-aggregated over valid."""
    r = window // 2
    xp = F.pad(x, (r, r, r, r), mode="replicate")
    yp = F.pad(y, (r, r, r, r), mode="replicate")
    H, W = x.shape[-2:]
    ham = torch.zeros_like(y)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy == 0 and dx == 0:
                continue
            xs = xp[..., r + dy : r + dy + H, r + dx : r + dx + W]
            ys = yp[..., r + dy : r + dy + H, r + dx : r + dx + W]
            ham += ((xs > x) != (ys > y)).to(y.dtype)
    ham /= window * window - 1
    pm = _box(m, window).clamp_min(1e-6)
    return _box(m * ham, window) / pm, pm


def _sad_cost(x: Tensor, y: Tensor, m: Tensor, window: int, tau: float):
    """Colour absolute difference truncated at ``tau`` (scaled to [0, 1]), box-aggregated.

    ``x`` ``[C, H, W]``, ``y`` ``[S, C, Dc, H, W]``, ``m`` ``[S, Dc, H, W]``.
    """
    ad = (y - x[None, :, None]).abs().mean(1).clamp(max=tau) / tau
    pm = _box(m, window).clamp_min(1e-6)
    return _box(m * ad, window) / pm, pm


def _best_k_mean(cost: Tensor, ok: Tensor, k: int, max_cost: float):
    """Mean of the ``k`` lowest valid costs over views (dim 0) -> ``[Dc, H, W]`` and views used.

    Repeated ``amin`` (ties counted) instead of ``topk``, which is slow along a leading dim.
    """
    c = torch.where(ok, cost, math.inf)
    total = torch.zeros_like(c[0])
    n = torch.zeros(c.shape[1:], dtype=torch.long, device=c.device)
    for _ in range(k):
        mn = c.amin(0)
        eq = c == mn
        take = torch.minimum(eq.sum(0), k - n) * torch.isfinite(mn)
        total += torch.where(take > 0, mn, 0.0) * take
        n += take
        c = torch.where(eq, math.inf, c)
    agg = torch.where(n > 0, total / n.clamp_min(1), max_cost)
    return agg, n


def _refine_and_confidence(cv: Tensor, nv: Tensor, k: int, max_cost: float, refine: bool):
    """WTA + parabola refinement + confidence from the cost volume ``[D, H, W]``.

    Returns continuous plane index ``s`` ``[H, W]``, refined cost ``[H, W]``, peak ratio
    ``[H, W]`` in [0, 1] and the view factor ``[H, W]`` in [0, 1].
    """
    D = cv.shape[0]
    idx = cv.argmin(0, keepdim=True)  # [1, H, W]
    c0 = cv.gather(0, idx)
    cm = cv.gather(0, (idx - 1).clamp_min(0))
    cp = cv.gather(0, (idx + 1).clamp_max(D - 1))
    interior = (idx > 0) & (idx < D - 1)
    denom = cm - 2 * c0 + cp
    delta = torch.zeros_like(c0)
    if refine:
        ok = interior & (denom > 1e-9)
        delta = torch.where(ok, 0.5 * (cm - cp) / denom.clamp_min(1e-9), delta).clamp(-0.5, 0.5)
    c_ref = (c0 - 0.25 * (cm - cp) * delta).clamp(0.0, max_cost)
    # Second-best *local* minimum that is not adjacent to the winner.
    inf = torch.full_like(cv[:1], math.inf)
    padded = torch.cat([inf, cv, inf], 0)
    is_min = (cv <= padded[:-2]) & (cv <= padded[2:])
    planes = torch.arange(D, device=cv.device)[:, None, None]
    far = (planes - idx).abs() > 1
    c2 = torch.where(is_min & far, cv, torch.full_like(cv, max_cost)).amin(0, keepdim=True)
    peak = ((c2 - c0) / c2.clamp_min(1e-6)).clamp(0.0, 1.0)
    views = nv.gather(0, idx).to(cv.dtype) / k
    return (idx + delta)[0], c_ref[0], peak[0], views.clamp(0.0, 1.0)[0]


def plane_sweep_depth(
    ref_image: Tensor,
    src_images: Tensor,
    K_ref: Tensor,
    c2w_ref: Tensor,
    K_src: Tensor,
    c2w_src: Tensor,
    depth_range: tuple[float, float],
    num_depths: int = 64,
    inverse_depth: bool = True,
    window: int = 5,
    robust: str = "truncated_zncc",
    chunk: int = 16,
    top_k: int | None = None,
    refine: bool = True,
    trunc: float = 1.0,
    sad_tau: float = 0.2,
    texture_threshold: float = 0.01,
    match_scale: float = 0.2,
    return_cost_volume: bool = False,
) -> dict[str, Tensor]:
    """Depth of the reference view by plane sweep.

    ``ref_image`` ``[3, H, W]``, ``src_images`` ``[S, 3, Hs, Ws]`` in [0, 1]; ``K_ref`` ``[3, 3]``,
    ``c2w_ref`` ``[4, 4]``, ``K_src`` ``[S, 3, 3]``, ``c2w_src`` ``[S, 4, 4]``;
    ``depth_range = (near, far)`` in the poses' unit. ``robust``: ``truncated_zncc`` (1 - ZNCC over
    the window, truncated at ``trunc``), ``census`` (window census Hamming distance) or
    ``truncated_sad`` (colour |diff| truncated at ``sad_tau``). ``top_k`` views (default
    ``ceil(S / 2)``) are averaged per plane. Reference windows with gray std below
    ``texture_threshold`` are unmatchable. Planes are processed ``chunk`` at a time.

    Confidence = peak ratio ``(c2 - c1) / c2`` (``c1`` best cost, ``c2`` best local minimum not
    adjacent to it) x ``exp(-c1 / match_scale)`` (costs normalised to [0, 1]) x the fraction of
    the ``top_k`` views that were valid at the winning plane.

    Returns ``depth`` ``[H, W]`` (z-depth, 0 = invalid), ``cost`` ``[H, W]`` (refined, in [0, 1]),
    ``confidence`` ``[H, W]`` in [0, 1] (0 where invalid), and ``cost_volume`` ``[D, H, W]``,
    ``depths`` ``[D]`` when ``return_cost_volume``.
    """
    if robust not in ROBUST_COSTS:
        raise ValueError(f"robust must be one of {ROBUST_COSTS}, got {robust!r}")
    if window < 1 or window % 2 == 0:
        raise ValueError("window must be a positive odd integer")
    dt, dev = ref_image.dtype, ref_image.device
    S = src_images.shape[0]
    H, W = ref_image.shape[-2:]
    k = min(S, top_k or math.ceil(S / 2))
    near, far = (float(v) for v in depth_range)
    depths = depth_hypotheses(near, far, num_depths, inverse_depth, dtype=dt, device=dev)
    cams = (K_ref.to(dt), c2w_ref.to(dt), K_src.to(dt), c2w_src.to(dt))
    A, b = _warp_setup(*cams, H, W, *src_images.shape[-2:])
    max_cost = trunc if robust == "truncated_zncc" else 1.0

    x = _gray(ref_image)[None]  # [1, 1, H, W]
    n = _box(torch.ones_like(x), window)
    ex = _box(x, window) / n
    textured = (_box(x * x, window) / n - ex * ex).clamp_min(0).sqrt()[0, 0] >= texture_threshold
    src = src_images if robust == "truncated_sad" else _gray(src_images)

    cv = torch.empty(num_depths, H, W, dtype=dt, device=dev)
    nv = torch.empty(num_depths, H, W, dtype=torch.uint8, device=dev)  # views used (<= k)
    for start in range(0, num_depths, chunk):
        d = depths[start : start + chunk]
        y, valid = _warp_chunk(src, A, b, d)  # [S, C, Dc, H, W], [S, Dc, H, W]
        m = valid.to(dt)
        if robust == "truncated_zncc":
            cost, pm = _zncc_cost(x, y[:, 0], m, window, trunc)
        elif robust == "census":
            cost, pm = _census_cost(x, y[:, 0], m, window)
        else:
            cost, pm = _sad_cost(ref_image, y, m, window, sad_tau)
        ok = valid & (pm >= 0.5 * n)  # centre valid, half the window too
        cv[start : start + chunk], nv[start : start + chunk] = _best_k_mean(cost, ok, k, max_cost)

    cv = torch.where(textured[None], cv, torch.full_like(cv, max_cost))
    s, cost, peak, views = _refine_and_confidence(cv, nv, k, max_cost, refine)
    depth = _sweep_param_to_depth(s, near, far, num_depths, inverse_depth)
    valid = textured & (views > 0) & (peak > 0)
    zero = torch.zeros_like(depth)
    cost = torch.where(valid, cost, torch.full_like(cost, max_cost)) / max_cost
    conf = peak * views * torch.exp(-cost / match_scale)
    out = {
        "depth": torch.where(valid, depth, zero),
        "cost": cost,
        "confidence": torch.where(valid, conf, zero),
    }
    if return_cost_volume:
        out["cost_volume"] = cv
        out["depths"] = depths
    return out
