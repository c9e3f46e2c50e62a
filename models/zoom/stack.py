"""Zoom stack and its rendering operators Π_image / Π_noise (Generative Powers of Ten §4.1, Alg. 1).

A zoom stack holds ``N`` layers ``L_0 … L_{N-1}`` of the same size ``H × W``; layer ``i`` shows the
central ``1/p^i`` of layer 0's field of view (zoom factor ``p_i = p^i``, ``p`` = 2 or 4). Layer
``j > i`` covers, in layer ``i``'s frame, the centred footprint of ``H/p^(j-i) × W/p^(j-i)`` pixels.

``D_k`` (the paper's down-scaling by ``p^k``) is ``k`` cascaded steps of a ``p × p`` truncated
Gaussian prefilter sampled with stride ``p``. Its combined ``p^k × p^k`` kernel is the product of
the per-step kernels, which makes ``D_a ∘ D_b = D_{a+b}`` exact; that is what lets rendering at
different levels agree exactly in their overlap. For ``p = 2`` the centred 2 × 2 truncated Gaussian
has four equidistant taps, i.e. it is the box filter, and so is its cascade.

Rendering is done by the recursion ``R_{N-1} = L_{N-1}``, ``R_i = L_i`` with its centre replaced by
``D_1(R_{i+1})``. Whenever each footprint has integer size and offset (``footprint``) this equals
Alg. 1's loop (paste ``D_{j-i}(L_j)`` for ``j = i+1 … N-1``); it also stays defined — and exactly
cross-scale consistent — for stacks deeper than the resolution (footprints below one pixel).

Π_noise uses the same recursion with each pasted, down-sampled noise multiplied by
``noise_gain = 1/‖w‖₂`` per step (``w`` the 2D step kernel). For ``p = 2`` this is the paper's
``p_j/p_i`` factor (``p`` per step); for ``p = 4`` the truncated Gaussian's taps are unequal and
``p_j/p_i`` would give variance ``p²‖w‖₂² ≠ 1``, so the exact gain is used. The footprints are
disjoint blocks, so i.i.d. unit noise stays i.i.d. unit noise at every level.

All functions take layers ``[..., N, C, H, W]`` (any leading batch dims).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def step_weights(p: int, sigma: float | None = None) -> list[float]:
    """1D weights (sum 1) of the separable ``p × p`` truncated Gaussian as Python floats;
    ``sigma`` in fine-image pixels, default ``p / 2``. Plain floats, so that compiled samplers
    bake them into their kernels (no tensor constants, no host copies)."""
    if p < 2:
        raise ValueError(f"zoom factor p must be >= 2, got {p}")
    sigma = p / 2 if sigma is None else sigma
    g = [math.exp(-0.5 * ((i - (p - 1) / 2) / sigma) ** 2) for i in range(p)]
    total = sum(g)
    return [x / total for x in g]


def step_kernel(p: int, sigma: float | None = None, dtype=torch.float32, device=None) -> Tensor:
    """``step_weights`` as a tensor ``[p]``."""
    return torch.tensor(step_weights(p, sigma), dtype=torch.float64).to(dtype=dtype, device=device)


def noise_gain(p: int, sigma: float | None = None) -> float:
    """Per-step noise rescaling ``1/‖w‖₂`` of the 2D step kernel (``= p`` for ``p = 2``)."""
    return 1.0 / sum(x * x for x in step_weights(p, sigma))  # ‖outer(w, w)‖₂ = ‖w‖₂²


def downsample(x: Tensor, p: int, sigma: float | None = None) -> Tensor:
    """``D_1``: ``[..., H, W]`` -> ``[..., H/p, W/p]`` (truncated-Gaussian prefilter, stride ``p``).

    Written as weighted sums of strided slices (no matmul, no weight tensor): under
    ``torch.compile`` it fuses with its neighbours into a few pointwise kernels."""
    H, W = x.shape[-2:]
    if H % p or W % p:
        raise ValueError(f"image size {H}x{W} is not divisible by p={p}")
    w = step_weights(p, sigma)
    x = sum(w[a] * x[..., a::p] for a in range(1, p)) + w[0] * x[..., 0::p]  # [..., H, W/p]
    return sum(w[a] * x[..., a::p, :] for a in range(1, p)) + w[0] * x[..., 0::p, :]


def downsample_k(x: Tensor, p: int, k: int, sigma: float | None = None) -> Tensor:
    """``D_k`` = ``k`` cascaded ``D_1`` steps: ``[..., H, W]`` -> ``[..., H/p^k, W/p^k]``."""
    for _ in range(k):
        x = downsample(x, p, sigma)
    return x


def footprint(n: int, p: int, k: int) -> tuple[int, int]:
    """``(offset, size)`` along one axis of length ``n`` of the level ``k`` steps finer; raises
    ``ValueError`` unless size ``n/p^k`` and offset ``(n - size)/2`` are integers."""
    size, rem = divmod(n, p**k)
    if rem or size < 1 or (n - size) % 2:
        raise ValueError(f"footprint of zoom depth {k} (p={p}) is not pixel-aligned in {n} px")
    return (n - size) // 2, size


def max_depth(H: int, W: int, p: int) -> int:
    """Largest ``k`` such that the footprints of depths ``1 … k`` are all pixel-aligned."""
    k = 0
    while True:
        try:
            for n in (H, W):
                footprint(n, p, k + 1)
        except ValueError:
            return k
        k += 1


def crop_centre(x: Tensor, p: int, k: int) -> Tensor:
    """Centre footprint of depth ``k``: ``[..., H, W]`` -> ``[..., H/p^k, W/p^k]``."""
    (oh, sh), (ow, sw) = footprint(x.shape[-2], p, k), footprint(x.shape[-1], p, k)
    return x[..., oh : oh + sh, ow : ow + sw]


def centre_mask(H: int, W: int, p: int, k: int, device=None) -> Tensor:
    """``M_k``: ``[H, W]`` bool, True on the centre ``H/p^k × W/p^k`` footprint."""
    m = torch.zeros(H, W, dtype=torch.bool, device=device)
    (oh, sh), (ow, sw) = footprint(H, p, k), footprint(W, p, k)
    m[oh : oh + sh, ow : ow + sw] = True
    return m


def _paste_centre(base: Tensor, inner: Tensor, p: int) -> Tensor:
    (oh, sh), (ow, sw) = footprint(base.shape[-2], p, 1), footprint(base.shape[-1], p, 1)
    out = base.clone()
    out[..., oh : oh + sh, ow : ow + sw] = inner
    return out


def _render(layers: Tensor, p: int, sigma: float | None, gain: float, stop: int) -> list[Tensor]:
    """Recursion from the finest layer down to level ``stop``; returns ``[R_stop … R_{N-1}]``."""
    N = layers.shape[-4]
    if not 0 <= stop < N:
        raise IndexError(f"level {stop} outside a stack of {N} layers")
    out = [layers[..., N - 1, :, :, :]]
    for i in range(N - 2, stop - 1, -1):
        inner = downsample(out[-1], p, sigma)
        out.append(_paste_centre(layers[..., i, :, :, :], inner * gain if gain != 1 else inner, p))
    return out[::-1]


def render_images(layers: Tensor, p: int, sigma: float | None = None) -> Tensor:
    """Π_image at every level: ``[..., N, C, H, W]`` -> ``[..., N, C, H, W]``."""
    return torch.stack(_render(layers, p, sigma, 1.0, 0), dim=-4)


def render_image(layers: Tensor, i: int, p: int, sigma: float | None = None) -> Tensor:
    """Π_image(L; i): ``[..., N, C, H, W]`` -> ``[..., C, H, W]``."""
    return _render(layers, p, sigma, 1.0, i)[0]


def render_noises(noise: Tensor, p: int, sigma: float | None = None) -> Tensor:
    """Π_noise at every level from i.i.d. noise layers ``E`` ``[..., N, C, H, W]`` (same shape)."""
    return torch.stack(_render(noise, p, sigma, noise_gain(p, sigma), 0), dim=-4)


def render_noise(noise: Tensor, i: int, p: int, sigma: float | None = None) -> Tensor:
    """Π_noise(E; i): ``[..., N, C, H, W]`` -> ``[..., C, H, W]``, unit variance per pixel."""
    return _render(noise, p, sigma, noise_gain(p, sigma), i)[0]


@dataclass
class ZoomStack:
    """Layers ``[..., N, C, H, W]`` at zoom factors ``p^i`` with their rendering operators."""

    layers: Tensor
    p: int = 2
    sigma: float | None = None

    def __post_init__(self):
        for n in self.layers.shape[-2:]:
            footprint(n, self.p, 1)  # raises unless one zoom step is pixel-aligned

    @property
    def num_levels(self) -> int:
        return self.layers.shape[-4]

    def render_image(self, i: int) -> Tensor:
        """Π_image(L; i) ``[..., C, H, W]``."""
        return render_image(self.layers, i, self.p, self.sigma)

    def render_images(self) -> Tensor:
        """Π_image at all levels ``[..., N, C, H, W]``."""
        return render_images(self.layers, self.p, self.sigma)

    def render_noise(self, noise: Tensor, i: int) -> Tensor:
        """Π_noise(E; i) for noise layers ``E`` shaped like ``layers``."""
        return render_noise(noise, i, self.p, self.sigma)
