"""Tileable value noise for procedural materials (torch, CPU or CUDA).

Noise is baked once into small smooth tileable textures (fixed seed, so every process sees the same
values) and sampled with bilinear ``grid_sample``: one lookup per octave, far cheaper than hashing
lattice corners per pixel. Coordinates are in lattice units: features are about one unit wide.
The 2D texture is mirrored at its borders every 64 units; ``fbm`` rotates and shifts each octave
so the repetition does not show.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.nn.functional import grid_sample

from datagen.worlds.ops import take, where_idx

_CELL = 4  # texels per lattice cell
_CELLS_2D = 64
_BANK_SEED = 20240611
_cache: dict[str, Tensor] = {}


def _smooth_upsample(lattice: np.ndarray, cell: int) -> np.ndarray:
    """Periodic smoothstep interpolation of a random lattice, ``cell`` texels per cell per axis."""
    out = lattice
    for axis in range(lattice.ndim):
        n = out.shape[axis]
        t = (np.arange(n * cell) / cell).astype(np.float64)
        i0 = np.floor(t).astype(np.int64)
        f = t - i0
        f = f * f * f * (f * (f * 6 - 15) + 10)
        a = np.take(out, i0 % n, axis=axis)
        b = np.take(out, (i0 + 1) % n, axis=axis)
        shape = [1] * out.ndim
        shape[axis] = -1
        f = f.reshape(shape)
        out = a * (1 - f) + b * f
    return out


def _bank(device: torch.device) -> Tensor:
    key = str(device)
    if key not in _cache:
        rng = np.random.default_rng(_BANK_SEED)
        tex2 = _smooth_upsample(rng.random((_CELLS_2D, _CELLS_2D)), _CELL)
        _cache[key] = torch.from_numpy(tex2.astype(np.float32))[None, None].to(device)
    return _cache[key]


_SIZE = _CELLS_2D * _CELL
_TO_GRID = 2.0 / _SIZE  # texel coordinate x (texel i's centre at x = i) -> grid_sample's [-1, 1]
_GRID_SHIFT = 1.0 / _SIZE - 1.0


def _lookup(grid: Tensor) -> Tensor:
    """Bilinear lookup at normalised coordinates ``[N, 2]`` (any range) -> ``[N]``.

    Coordinates outside [-1, 1] fold back by mirroring at the texture's borders
    (``padding_mode="reflection"``), which keeps the noise continuous without a modulo pass.
    """
    out = grid_sample(
        _bank(grid.device),
        grid.view(1, 1, -1, 2),
        mode="bilinear",
        padding_mode="reflection",
        align_corners=False,
    )
    return out[0, 0, 0]


def _sample(texel: Tensor) -> Tensor:
    """Bilinear lookup at texel coordinates ``[N, 2]`` -> ``[N]``."""
    return _lookup(texel.mul(_TO_GRID).add_(_GRID_SHIFT))


def noise2(p: Tensor) -> Tensor:
    """Smooth value noise in [0, 1] at ``p`` ``[N, 2]`` (lattice units) -> ``[N]``."""
    return _sample(p.float() * _CELL)


_SHEAR = torch.tensor([[1.0, 0.0, 0.4, 0.0], [0.0, 1.0, 1.0, 0.3], [0.6, 0.0, 0.0, 1.0]]) * _CELL


def noise3(p: Tensor) -> Tensor:
    """Smooth solid noise in about [0, 1] at ``p`` ``[N, 3]`` (lattice units) -> ``[N]``.

    Two sheared 2D lookups (no direction leaves both constant), about 5× cheaper than a
    trilinear 3D texture and free of the seams of triplanar mapping.
    """
    q = p.float() @ _SHEAR.to(p.device)
    q[:, 2] += 31.7 * _CELL
    both = _sample(torch.cat([q[:, :2], q[:, 2:]], 0))
    n = p.shape[0]
    return (both[:n] + both[n:]).sub_(1.0).mul_(0.75).add_(0.5)


def _octave_rotation(k: int, dim: int, device) -> Tensor:
    key = f"rot:{k}:{dim}:{device}"
    if key not in _cache:
        _cache[key] = _make_rotation(k, dim, device)
    return _cache[key]


def _make_rotation(k: int, dim: int, device) -> Tensor:
    """``[2, dim, dim]``: the octave's rotation and (row 0 of slot 1) its shift, in texels."""
    a = 0.61 + 1.17 * k
    c, s = math.cos(a), math.sin(a)
    shift = 17.31 * (k + 1)
    if dim == 2:
        m = torch.tensor([[c, -s], [s, c]], dtype=torch.float32, device=device) * _CELL
        return torch.stack([m, torch.full((2, 2), shift * _CELL, device=device)])
    m = [[c, -s, 0.0], [s * 0.8, c * 0.8, 0.6], [-s * 0.6, -c * 0.6, 0.8]]
    m = torch.tensor(m, dtype=torch.float32, device=device) * _CELL
    return torch.stack([m, torch.full((3, 3), shift * _CELL, device=device)])


def fbm(p: Tensor, octaves: int, footprint: Tensor | None = None, gain: float = 0.5) -> Tensor:
    """Fractal sum of ``octaves`` noise octaves at ``p`` ``[N, 2|3]`` -> ``[N]`` around 0.5.

    ``footprint`` ``[N]`` is the size of one pixel in ``p`` units: octaves finer than a pixel fade
    to their mean (and are only evaluated where visible), so distant surfaces do not alias while
    zooming in reveals every octave.
    """
    n, dim = p.shape
    p = p.float()
    total = torch.zeros(n, dtype=torch.float32, device=p.device)
    norm = sum(gain**k for k in range(octaves))
    amp, freq = 1.0, 1.0
    lo, hi = (0.0, 0.0) if footprint is None else torch.aminmax(footprint)
    lo, hi = float(lo), float(hi)
    for k in range(octaves):
        rot = _octave_rotation(k, dim, p.device)
        if footprint is None or 2.0 * freq * hi <= 0.5:  # every pixel resolves this octave
            total.add_(_octave(p, rot, freq, dim), alpha=amp)
        elif 2.0 * freq * lo >= 1.5:  # no pixel does (nor any finer one)
            break
        else:
            w = torch.clamp_(footprint * (-2.0 * freq) + 1.5, 0.0, 1.0)
            active = where_idx(w > 0)
            if active.numel() > 0.7 * n:
                total.addcmul_(_octave(p, rot, freq, dim), w, value=amp)
            else:
                val = _octave(take(p, active), rot, freq, dim) * take(w, active)
                total.index_add_(0, active, val, alpha=amp)
        amp *= gain
        freq *= 2.0
    return total.mul_(1.0 / (0.75 * norm)).add_(0.5)


def _octave(p: Tensor, rot: Tensor, freq: float, dim: int) -> Tensor:
    """One zero-mean octave at frequency ``freq``."""
    if dim == 2:
        grid = (p @ (rot[0] * (freq * _TO_GRID))).add_(rot[1, 0] * _TO_GRID + _GRID_SHIFT)
        return _lookup(grid).sub_(0.5)
    return noise3((p @ (rot[0] * (freq / _CELL))).add_(rot[1, 0] / _CELL)).sub_(0.5)


def hash2(i: Tensor, j: Tensor, seed: float | Tensor = 0) -> Tensor:
    """Deterministic hash of integer cells ``i``, ``j`` ``[N]`` and ``seed`` -> floats in [0, 1)."""
    s = torch.as_tensor(seed, device=i.device)
    s = (s * 1000).long() if s.is_floating_point() else s.long()
    h = i.long() * 374761393 + j.long() * 668265263 + s * 982451653
    h = (h ^ (h >> 13)) * 1274126177
    h = h ^ (h >> 16)
    return (h & 0xFFFFFF).float() / float(0x1000000)


def smoothstep(e0: float | Tensor, e1: float | Tensor, x: Tensor) -> Tensor:
    """Hermite step from 0 at ``e0`` to 1 at ``e1`` (elementwise)."""
    t = ((x - e0) / (e1 - e0)).clamp_(0.0, 1.0)
    return t * t * (3 - 2 * t)


def line_coverage(dist: Tensor, half_width: Tensor | float, footprint: Tensor) -> Tensor:
    """Antialiased coverage in [0, 1] of a line at distance ``dist`` with ``half_width``.

    Lines thinner than a pixel (``footprint``) fade to their area fraction instead of aliasing.
    """
    fp = footprint.clamp_min(1e-6)
    hw = torch.as_tensor(half_width, device=dist.device, dtype=dist.dtype)
    edge = smoothstep(hw + 0.5 * fp, hw - 0.5 * fp, dist)
    fraction = (2 * hw / fp).clamp(max=1.0)
    return torch.where(2 * hw < fp, fraction * smoothstep(fp, 0.0 * fp, dist), edge)
