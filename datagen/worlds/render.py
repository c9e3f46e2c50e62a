"""Headless ray-cast renderer: RGB, metric z-depth, normals and instance ids for any K, c2w.

Rays go through pixel centres (``u + 0.5``, OpenCV camera, ``c2w``) and are cast in one open3d
``RaycastingScene`` batch per frame on the CPU. Ray directions are ``R K^-1 [u, v, 1]``, so the
returned hit distance is the z-depth itself. Shading runs in torch on ``device`` (CPU, or CUDA
when given): procedural materials per hit, Lambert key light with shadow rays, hemispheric
ambient, emission, distance fog and a sky with clouds for misses; supersampling averages an
``s × s`` grid per pixel in linear light, while depth, normals and ids stay exact at the centres.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

from datagen.worlds.materials import KINDS, MaterialTable
from datagen.worlds.noise import fbm, smoothstep
from datagen.worlds.ops import dot3, normalize3, put, take, torch_threads, where_idx
from datagen.worlds.world import World

EXPOSURE = 1.15


def _as_np(x) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


@functools.lru_cache(maxsize=8)
def _pixel_centres(H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    u = np.arange(W, dtype=np.float32) + 0.5
    v = np.arange(H, dtype=np.float32) + 0.5
    uu, vv = np.meshgrid(u, v)
    return uu.reshape(-1), vv.reshape(-1)


def camera_rays(K, c2w, H: int, W: int, supersample: int = 1) -> np.ndarray:
    """Rays ``[H*s, W*s, 6]`` float32 (origin, direction with camera-z component 1) through the
    centres of an ``s × s`` sub-pixel grid of every pixel."""
    K, c2w = _as_np(K), _as_np(c2w)
    s = int(supersample)
    M = (c2w[:3, :3] @ np.linalg.inv(np.diag([s, s, 1.0]) @ K)).T.astype(np.float32)
    u, v = _pixel_centres(H * s, W * s)
    rays = np.empty((u.shape[0], 6), np.float32)
    rays[:, :3] = c2w[:3, 3]
    for j in range(3):  # per column: numpy broadcasting over a last axis of 3 is slow
        rays[:, 3 + j] = u * M[0, j] + v * M[1, j] + M[2, j]
    return rays.reshape(H * s, W * s, 6)


def cast_depth(world: World, K, c2w, H: int, W: int) -> np.ndarray:
    """Depth-only ray cast: z-depth ``[H, W]`` float32, 0 where the ray escapes."""
    t = world.cast(camera_rays(K, c2w, H, W))["t_hit"]
    return np.where(np.isfinite(t), t, 0.0).astype(np.float32)


def _world_tensors(world: World, device: torch.device) -> dict:
    """Per-world shading tables on ``device`` (cached): ``corners`` ``[T, 27]`` (vertex-0
    attributes, the two edge differences, for normal/uv/local, then the unit geometric normal),
    the material table and each triangle's material kind (numpy int16, for sorting hits)."""
    key = f"tensors:{device}"
    if key not in world.cache:
        a = world.arrays
        v, t = a["vertices"].astype(np.float64), a["triangles"]
        g = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
        g /= np.linalg.norm(g, axis=1, keepdims=True).clip(1e-20)
        attrs = np.concatenate([a["normals"], a["uv"], a["local"]], 1).astype(np.float32)
        corners = attrs[t]  # [T, 3, 8]: v0, then v1 - v0 and v2 - v0 (barycentric form)
        corners[:, 1:] -= corners[:, :1]
        corners = np.concatenate([corners.reshape(len(t), 24), g.astype(np.float32)], 1)
        kinds = np.array([KINDS.index(m.kind) for m in world.materials], np.int16)
        world.cache[key] = {
            "corners": torch.from_numpy(corners).to(device),
            "table": MaterialTable(world.materials, device),
            "kind_of_triangle": kinds[a["tri_material"]],
        }
    return world.cache[key]


def _lin(rgb, device) -> Tensor:
    """sRGB colour -> linear (gamma 2, the renderer's display transfer)."""
    return torch.tensor(rgb, dtype=torch.float32, device=device) ** 2


def _sky_gradient(world: World, d: Tensor) -> Tensor:
    L, dev = world.lighting, d.device
    e = d[:, 2]
    hor, zen = _lin(L.sky_horizon, dev), _lin(L.sky_zenith, dev)
    col = hor[None] + (zen - hor)[None] * smoothstep(0.0, 0.45, e)[:, None]
    below = (e < 0).any() if e.device.type == "cpu" else True
    if below:
        col = col + (_lin(L.ground, dev)[None] * 0.8 - col) * smoothstep(0.0, -0.1, e)[:, None]
    return col


def sky(world: World, d: Tensor) -> Tensor:
    """Linear sky radiance ``[n, 3]`` for unit directions ``d`` ``[n, 3]`` (z up): gradient,
    clouds and the sun's disc and glow."""
    L = world.lighting
    col = _sky_gradient(world, d)
    e = d[:, 2]
    if L.clouds:
        up = where_idx(e > 0.02)
        if up.numel():
            du, eu = take(d, up), take(e, up)
            p = du[:, :2] / eu[:, None] * 2.5
            c = smoothstep(0.5, 0.75, fbm(p + 3.7, 3)) * smoothstep(0.02, 0.15, eu)
            cu = take(col, up)
            put(col, up, cu + (0.95 - cu) * (0.85 * c)[:, None])
    if L.point is None:
        sun = torch.tensor(L.sun_dir, dtype=torch.float32, device=d.device)
        cos = d @ sun
        glow = smoothstep(0.9995, 0.9998, cos) * 20 + smoothstep(0.97, 1.0, cos) ** 4 * 0.6
        col = col + glow[:, None]
    return col


class _Hits:
    """Ray-cast results as flat torch tensors on ``device``: ``hit`` ``[N]`` for every ray, the
    rest for the ``idx`` rows that hit."""

    def __init__(self, world: World, rays: np.ndarray, hits: dict, device: torch.device) -> None:
        wt = _world_tensors(world, device)
        a = world.arrays
        t_np = hits["t_hit"].reshape(-1)
        hit_np = np.isfinite(t_np)
        idx_np = np.flatnonzero(hit_np)
        prim = np.take(hits["primitive_ids"].reshape(-1), idx_np)
        kind = np.take(wt["kind_of_triangle"], prim)
        order = np.argsort(kind, kind="stable")
        self.counts = np.bincount(kind, minlength=len(KINDS)).tolist()
        idx_np, prim = idx_np[order], prim[order].astype(np.int64)
        self.hit = torch.from_numpy(hit_np).to(device)
        self.idx = torch.from_numpy(idx_np).to(device)
        rays = rays.reshape(-1, 6)
        self.dirs = torch.from_numpy(rays[:, 3:]).to(device)
        hr = torch.from_numpy(np.take(rays, idx_np, axis=0)).to(device)
        bary = np.take(hits["primitive_uvs"].reshape(-1, 2), idx_np, 0)
        self.t = torch.from_numpy(np.take(t_np, idx_np)).to(device)
        self.material = torch.from_numpy(np.take(a["tri_material"], prim).astype(np.int64)).to(
            device
        )
        self.instance = torch.from_numpy(np.take(a["tri_instance"], prim)).to(device)
        self.prim = torch.from_numpy(prim).to(device)
        bary = torch.from_numpy(bary).to(device)
        d = hr[:, 3:]
        self.d = d
        self.ray_len = torch.sqrt(dot3(d, d))
        self.pos = torch.addcmul(hr[:, :3], self.t[:, None], d)
        corners = take(wt["corners"], self.prim)
        c = corners[:, :24].view(-1, 3, 8)
        attrs = torch.addcmul(c[:, 0], c[:, 1], bary[:, :1])
        attrs.addcmul_(c[:, 2], bary[:, 1:])
        ng = corners[:, 24:]
        self.cos = dot3(ng, d)
        facing = torch.where(self.cos > 0, -1.0, 1.0)[:, None]
        self.ng = ng * facing
        self.ns = normalize3(attrs[:, :3]) * facing
        self.uv, self.local = attrs[:, 3:5], attrs[:, 5:8]


def _shade(world: World, h: _Hits, fx: float | Tensor, shadows: bool) -> Tensor:
    """Linear radiance ``[N, 3]`` for every ray of ``h``; ``fx``: the focal length in pixels of
    the ray grid, one number or one per ray ``[N]``."""
    device = h.t.device
    wt = _world_tensors(world, device)
    L = world.lighting
    out = torch.empty(h.hit.shape[0], 3, device=device)
    miss = where_idx(~h.hit)
    if miss.numel():
        put(out, miss, sky(world, normalize3(take(h.dirs, miss))))
    if not h.idx.numel():
        return out
    ng, ns, pos, t = h.ng, h.ns, h.pos, h.t
    if isinstance(fx, Tensor):
        fx = take(fx, h.idx)
    fp = t / (fx * (h.cos.abs() / h.ray_len).clamp_min(0.25))
    table: MaterialTable = wt["table"]
    albedo = table.albedo(h.material, h.uv, h.local, pos, ns, fp, counts=h.counts)
    albedo = albedo * albedo
    sky_mix = (_lin(L.sky_zenith, device) + _lin(L.sky_horizon, device)) * 0.5
    ground = _lin(L.ground, device)
    k = L.ambient * 1.6
    light = (ground * k)[None] + ((sky_mix - ground) * (0.5 * k))[None] * (1 + ns[:, 2:3])
    sun_col = torch.tensor(L.sun_color, dtype=torch.float32, device=device)
    if L.point is None:
        sun = torch.tensor(L.sun_dir, dtype=torch.float32, device=device)
        ndl = (ns @ sun).clamp_min(0) * ((ng @ sun) > 0)
        irr = sun_col[None]
        tfar = math.inf
    else:
        lvec = torch.tensor(L.point, dtype=torch.float32, device=device)[None] - pos
        dist2 = dot3(lvec, lvec)
        inv = torch.rsqrt(dist2)
        ndl = (dot3(ns, lvec) * inv).clamp_min(0) * (dot3(ng, lvec) > 0)
        irr = sun_col[None] / (dist2 + 0.3)[:, None]
        tfar = 0.999
    if shadows and L.shadows:
        lit = where_idx(ndl > 0)
        if lit.numel():
            tl = take(t, lit)
            origin = take(pos, lit) + take(ng, lit) * (1e-3 + 2e-4 * tl)[:, None]
            if L.point is None:
                sdir = sun[None].expand(lit.shape[0], 3)
            else:
                sdir = take(lvec, lit)
            srays = np.empty((lit.shape[0], 6), np.float32)
            srays[:, :3], srays[:, 3:] = origin.cpu().numpy(), sdir.cpu().numpy()
            vis = torch.from_numpy(~world.occluded(srays, tfar)).to(device)
            put(ndl, lit, take(ndl, lit) * vis)
    light = light + irr * ndl[:, None]
    col = albedo * (light + 2.0 * take(table.emission, h.material)[:, None])
    if L.fog > 0:
        f = torch.exp(-L.fog * t * h.ray_len)[:, None]
        haze = _lin(L.sky_horizon, device)[None]  # aerial perspective fades to the horizon
        col = haze + (col - haze) * f
    put(out, h.idx, col)
    return out


def _tonemap(lin: Tensor) -> Tensor:
    """Linear radiance -> display [0, 1] (exponential shoulder, gamma 2)."""
    return torch.sqrt(1 - torch.exp(-EXPOSURE * lin.clamp_min(0)))


def render(
    world: World,
    K,
    c2w,
    H: int,
    W: int,
    supersample: int = 1,
    *,
    shadows: bool = True,
    device: str | torch.device = "cpu",
    threads: int | None = 1,
) -> dict[str, np.ndarray]:
    """Render one view.

    ``K`` ``[3, 3]`` (pixels), ``c2w`` ``[4, 4]`` (OpenCV), numpy or torch. Returns ``rgb`` uint8
    ``[H, W, 3]``, ``depth`` float32 ``[H, W]`` z-depth (0 = sky), ``normals`` float32
    ``[H, W, 3]`` unit world normals facing the camera (0 = sky), ``instance`` int32 ``[H, W]``
    (0 = sky). Shading runs on ``device`` with ``threads`` torch CPU threads (see
    ``ops.torch_threads``); ray casting uses all cores.
    """
    with torch_threads(threads if torch.device(device).type == "cpu" else None):
        return _render(world, K, c2w, H, W, supersample, shadows, torch.device(device))


MAX_BATCH_RAYS = 1 << 20  # render_views casts and shades at most this many rays at once


def render_views(
    world: World,
    Ks,
    c2ws,
    H: int,
    W: int,
    supersample: int = 1,
    *,
    shadows: bool = True,
    device: str | torch.device = "cpu",
    threads: int | None = 1,
) -> dict[str, np.ndarray]:
    """``render`` of ``V`` views in one ray batch (one cast, one shading pass): the same pixels
    as ``V`` calls of ``render``, with the per-call overheads paid once.

    ``Ks`` ``[V, 3, 3]`` or one ``[3, 3]``, ``c2ws`` ``[V, 4, 4]``. Returns ``render``'s arrays
    stacked: ``rgb`` ``[V, H, W, 3]``, ``depth`` / ``instance`` ``[V, H, W]``, ``normals``
    ``[V, H, W, 3]``.
    """
    c2ws = _as_np(c2ws).reshape(-1, 4, 4)
    Ks = _as_np(Ks)
    Ks = np.broadcast_to(Ks, (len(c2ws), 3, 3)) if Ks.ndim == 2 else Ks
    if len(Ks) != len(c2ws):
        raise ValueError(f"{len(Ks)} intrinsics for {len(c2ws)} camera poses")
    per_group = max(1, MAX_BATCH_RAYS // (H * W * int(supersample) ** 2))
    parts = []
    with torch_threads(threads if torch.device(device).type == "cpu" else None):
        for a in range(0, len(c2ws), per_group):
            b = a + per_group
            parts.append(_render(world, Ks[a:b], c2ws[a:b], H, W, supersample, shadows,
                                 torch.device(device)))  # fmt: skip
    return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}


def _rays(Ks: np.ndarray, c2ws: np.ndarray, H: int, W: int, s: int) -> np.ndarray:
    return np.concatenate([camera_rays(K, c, H, W, s).reshape(-1, 6) for K, c in zip(Ks, c2ws)])


def _render(world, K, c2w, H, W, supersample, shadows, device) -> dict[str, np.ndarray]:
    """One view (``K [3, 3]``, ``c2w [4, 4]``) or ``V`` views (``[V, 3, 3]``, ``[V, 4, 4]``)."""
    s = int(supersample)
    K, c2w = _as_np(K), _as_np(c2w)
    single = c2w.ndim == 2
    Ks, c2ws = (K[None], c2w[None]) if single else (K, c2w)
    V = len(c2ws)
    rays = _rays(Ks, c2ws, H, W, s)
    h = _Hits(world, rays, world.cast(rays), device)
    if V == 1:
        fx = float(Ks[0, 0, 0]) * s
    else:
        fx = torch.from_numpy(np.repeat(Ks[:, 0, 0] * s, H * s * W * s).astype(np.float32))
        fx = fx.to(device)
    lin = _shade(world, h, fx, shadows)
    if s > 1:
        lin = lin.view(V, H, s, W, s, 3).mean((2, 4))
        rays = _rays(Ks, c2ws, H, W, 1)
        h = _Hits(world, rays, world.cast(rays), device)
    rgb = (_tonemap(lin).reshape(V, H, W, 3) * 255 + 0.5).clamp(0, 255).to(torch.uint8)
    depth = torch.zeros(V * H * W, device=device)
    normals = torch.zeros(V * H * W, 3, device=device)
    instance = torch.zeros(V * H * W, dtype=torch.int32, device=device)
    put(depth, h.idx, h.t)
    put(normals, h.idx, h.ns)
    put(instance, h.idx, h.instance)
    out = {
        "rgb": rgb.cpu().numpy(),
        "depth": depth.view(V, H, W).cpu().numpy(),
        "normals": normals.view(V, H, W, 3).cpu().numpy(),
        "instance": instance.view(V, H, W).cpu().numpy(),
    }
    return {k: v[0] for k, v in out.items()} if single else out


def preview_image(world: World, H: int = 256, W: int = 256, fov_deg: float = 70.0) -> np.ndarray:
    """uint8 ``[H, W, 3]`` view from the world's preview camera (2× supersampled)."""
    from models.geometry import K_from_fov, look_at

    nav = world.nav
    c2w = look_at(
        torch.tensor(nav.preview_eye, dtype=torch.float64),
        torch.tensor(nav.preview_target, dtype=torch.float64),
        torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
    )
    K = K_from_fov(fov_deg, H, W, dtype=torch.float64)
    return render(world, K, c2w, H, W, supersample=2)["rgb"]
