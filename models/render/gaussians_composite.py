"""Tile binning and front-to-back alpha compositing in pure torch (differentiable by autograd).

Mirrors gsplat's rasteriser: 16×16 tiles, a Gaussian is listed in every tile its bounding box
touches, each tile's list is sorted by camera depth, and every pixel composites its tile's list
front to back with ``alpha = min(0.999, o · G)``, skipping ``alpha < 1/255`` and stopping before
the Gaussian that would take the transmittance to ``<= 1e-4``. Pixel centres sit at ``+0.5``.

Work is vectorised over all (image, 4×4 sub-tile) pairs — same result as 16×16 tiles, fewer
Gaussian-pixel pairs — and chunked along each sub-tile's depth-sorted list, so one step holds at
most ``CHUNK_ELEMENTS`` pixel-Gaussian pairs (plus what autograd saves). Images are ``I = B·C``.
"""

from collections.abc import Callable

import torch
from torch import Tensor

from .gaussians_project import ALPHA_THRESHOLD

TILE = 16  # gsplat's tile size: decides which pixels a Gaussian may touch at all
SUB = 4  # our work unit (divides TILE); smaller means fewer wasted pairs
T_MIN = 1e-4  # transmittance at which a pixel is done (gsplat, exclusive)
LOWPASS_RADIUS_2DGS = 2.36  # 2DGS screen filter o·exp(-|d|²) < 1/255 beyond sqrt(ln 255) px
CHUNK_ELEMENTS = 1 << 16  # per-step budget of sub-tiles × 16 pixels × Gaussians

# (px [n, P], py [n, P], params [n, k, p]) -> (alpha before the threshold [n, P, k], ok [n, P, k])
AlphaFn = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def alpha_3dgs(px: Tensor, py: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
    """3DGS kernel ``o exp(-½ dᵀ Σ⁻¹ d)``; params ``[n, k, 6]`` = (mx, my, conic(3), opacity)."""
    mx, my, ca, cb, cc, op = params[..., None, :, :].unbind(-1)  # each [n, 1, k]
    dx = mx - px[..., None]
    dy = my - py[..., None]
    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
    alpha = torch.clamp_max(op * torch.exp(-sigma), 0.999)
    return alpha, sigma >= 0


def alpha_2dgs(px: Tensor, py: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
    """2DGS kernel: ray-splat intersection ``(u, v)`` in the surfel frame, low-pass in screen.

    ``G = exp(-½ min(u² + v², 2 |p - m|²))`` (gsplat's FILTER_INV_SQUARE_2DGS = 2, i.e. a
    screen-space filter of variance ½ px²); params ``[n, k, 12]`` = (mx, my, M row-major, opacity).
    """
    p = params[..., None, :, :]  # [n, 1, k, 12]
    mx, my, op = p[..., 0], p[..., 1], p[..., 11]
    Mu, Mv, Mw = p[..., 2:5], p[..., 5:8], p[..., 8:11]
    pxx, pyy = px[..., None, None], py[..., None, None]
    hu = pxx * Mw - Mu  # [n, P, k, 3]
    hv = pyy * Mw - Mv
    cr = torch.linalg.cross(hu, hv, dim=-1)
    cz_ok = cr[..., 2] != 0
    cz = torch.where(cz_ok, cr[..., 2], torch.ones_like(cr[..., 2]))
    u, v = cr[..., 0] / cz, cr[..., 1] / cz
    g3 = u * u + v * v
    dx, dy = mx - px[..., None], my - py[..., None]
    g2 = 2.0 * (dx * dx + dy * dy)
    sigma = 0.5 * torch.minimum(g3, g2)
    alpha = torch.clamp_max(op * torch.exp(-sigma), 0.999)
    return alpha, cz_ok & (sigma >= 0)


@torch.no_grad()
def bin_tiles(
    means2d: Tensor,
    radii: Tensor,
    support: Tensor,
    depths: Tensor,
    valid: Tensor,
    width: int,
    height: int,
) -> tuple[Tensor, Tensor, int, int]:
    """Depth-sorted Gaussian lists per ``SUB``×``SUB`` sub-tile.

    A Gaussian is listed in the sub-tiles of gsplat's 16-px tiles that its bounding box
    (``radii``) touches, pruned to those meeting ``means2d ± support`` (a box outside of which it
    contributes no alpha >= 1/255), so the result equals gsplat's while evaluating fewer pairs.
    means2d/radii/support ``[I, N, 2]``, depths/valid ``[I, N]`` -> (``ids [I * tiles, L]`` flat
    indices into ``I * N`` padded with -1, ``counts [I * tiles]``, tiles_x, tiles_y).
    """
    n_img, N = depths.shape
    tw, th = (width + SUB - 1) // SUB, (height + SUB - 1) // SUB
    tw16, th16 = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
    n_tiles = tw * th
    device = means2d.device
    vid = valid.reshape(-1).nonzero()[:, 0]
    order = torch.sort(depths.reshape(-1)[vid], stable=True).indices
    vid = vid[order]
    m = means2d.reshape(-1, 2)[vid]
    r = radii.reshape(-1, 2)[vid]
    s = support.reshape(-1, 2)[vid]
    lim16 = torch.tensor([tw16, th16], device=device)
    lo = torch.floor(m / TILE - r / TILE).long().clamp_min(0).minimum(lim16) * (TILE // SUB)
    hi = torch.ceil(m / TILE + r / TILE).long().clamp_min(0).minimum(lim16) * (TILE // SUB)
    lim = torch.tensor([tw, th], device=device)
    lo = lo.maximum(torch.floor((m - s) / SUB).long()).clamp(min=0).minimum(lim)
    hi = hi.minimum(torch.floor((m + s) / SUB).long() + 1).minimum(lim)
    span = (hi - lo).clamp_min(0)
    cnt = span[:, 0] * span[:, 1]
    g = torch.repeat_interleave(torch.arange(len(vid), device=device), cnt)
    first = torch.cumsum(cnt, 0) - cnt
    local = torch.arange(len(g), device=device) - first[g]
    tx = lo[g, 0] + local % span[g, 0]
    ty = lo[g, 1] + local // span[g, 0]
    key = (vid[g] // N) * n_tiles + ty * tw + tx
    key, perm = torch.sort(key, stable=True)  # stable: keeps depth order inside each tile
    flat = vid[g[perm]]
    counts = torch.bincount(key, minlength=n_img * n_tiles)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(len(key), device=device) - starts[key]
    L = int(counts.max()) if len(key) else 0
    ids = torch.full((n_img * n_tiles, max(L, 1)), -1, dtype=torch.long, device=device)
    ids[key, pos] = flat
    return ids, counts, tw, th


def composite(
    ids: Tensor,
    counts: Tensor,
    tw: int,
    th: int,
    params: Tensor,
    feats: Tensor,
    alpha_fn: AlphaFn,
    width: int,
    height: int,
) -> tuple[Tensor, Tensor]:
    """Front-to-back compositing of per-tile lists.

    ids ``[I * tiles, L]``, counts ``[I * tiles]``, params ``[I * N, p]`` (kernel inputs, last =
    opacity), feats ``[I * N, F]`` (what gets blended) -> (``feat [I, H, W, F]`` = Σ wᵢ fᵢ,
    ``T [I, H, W]`` final transmittance, so alpha = 1 - T).
    """
    n_tiles_all, L = ids.shape
    F = feats.shape[-1]
    P = SUB * SUB
    device, dtype = params.device, params.dtype
    ar = torch.arange(SUB, device=device, dtype=dtype) + 0.5
    tid = torch.arange(n_tiles_all, device=device) % (tw * th)
    px_all = ((tid % tw)[:, None, None] * SUB + ar[None, None, :]).expand(-1, SUB, SUB)
    py_all = ((tid // tw)[:, None, None] * SUB + ar[None, :, None]).expand(-1, SUB, SUB)
    px_all, py_all = px_all.reshape(-1, P), py_all.reshape(-1, P)

    acc = torch.zeros(n_tiles_all, P, F, device=device, dtype=feats.dtype)
    T = torch.ones(n_tiles_all, P, device=device, dtype=dtype)
    alive = torch.ones(n_tiles_all, P, device=device, dtype=torch.bool)
    start = 0
    while start < L:
        active = ((counts > start) & alive.any(1)).nonzero()[:, 0]
        if len(active) == 0:
            break
        k = max(8, CHUNK_ELEMENTS // (len(active) * P))
        idx = ids[active, start : start + k]  # [n, k]
        ok_g = idx >= 0
        idx_c = idx.clamp_min(0)
        alpha, ok = alpha_fn(px_all[active], py_all[active], params[idx_c])
        keep = ok & ok_g[:, None, :] & (alpha >= ALPHA_THRESHOLD)
        alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
        one_m = 1.0 - alpha
        T0 = T[active]
        cp = torch.cumprod(one_m, dim=-1)
        with torch.no_grad():
            was_alive = alive[active]
            inc = (T0[..., None] * cp > T_MIN) & was_alive[..., None]
            still_alive = was_alive & (T0 * cp[..., -1] > T_MIN)
        T_excl = T0[..., None] * torch.cat([torch.ones_like(cp[..., :1]), cp[..., :-1]], dim=-1)
        w = torch.where(inc, alpha * T_excl, torch.zeros_like(alpha))  # [n, P, k]
        acc = acc.index_add(0, active, torch.bmm(w.to(feats.dtype), feats[idx_c]))
        T_new = T0 * torch.where(inc, one_m, torch.ones_like(one_m)).prod(-1)
        T = T.index_copy(0, active, T_new)
        alive = alive.index_copy(0, active, still_alive)
        start += k

    n_img = n_tiles_all // (tw * th)

    def to_image(x: Tensor) -> Tensor:
        x = x.reshape(n_img, th, tw, SUB, SUB, -1).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(n_img, th * SUB, tw * SUB, -1)[:, :height, :width]

    return to_image(acc), to_image(T[..., None])[..., 0]
