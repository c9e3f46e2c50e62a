"""PRoPE: cameras as relative positional encoding in attention (Li et al. 2025, "Cameras as
Relative Positional Encoding"), the camera encoding WorldFM §2.4.1 adopts.

Each token n belongs to a view with camera projection ``P_n = lift(K̃) · w2c`` (4×4, image ←
world), ``K̃`` the intrinsics normalised by the image size (``fx/W, fy/H, cx/W − ½, cy/H − ½``).
The head dimension ``d`` splits into ``[projective d/2 | RoPE-x d/4 | RoPE-y d/4]``:

    q'  = [ (I ⊗ P_nᵀ)  q_proj | Rx(x_n) q_x | Ry(y_n) q_y ]
    k'  = [ (I ⊗ P_m⁻¹) k_proj | Rx(x_m) k_x | Ry(y_m) k_y ]        (v' likewise)
    out = [ (I ⊗ P_n)   o_proj | Rx(x_n)⁻¹ o_x | Ry(y_n)⁻¹ o_y ],   o = SDPA(q', k', v')

``I ⊗ M`` applies ``M`` to every 4-vector chunk. The score between tokens n, m is
``q_projᵀ P_n P_m⁻¹ k_proj`` plus 2D-RoPE terms in ``x_n − x_m``, ``y_n − y_m`` (positions inside
each image): it depends on cameras only through ``P_n P_m⁻¹``. A change of world frame ``T``
(``c2w → T c2w``) maps ``P → P T⁻¹`` and leaves every ``P_n P_m⁻¹`` — hence the attention output —
unchanged; with identical cameras ``P_n P_m⁻¹ = I`` and PRoPE reduces to 2D RoPE on the RoPE
slices. Values get the same transform as keys and the output the inverse of the query's
(GTA-style), as in the reference implementation; ``rotate_values=False`` applies RoPE to q/k only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def normalize_K(K: Tensor, height: int, width: int) -> Tensor:
    """Pixel intrinsics ``[..., 3, 3]`` → image-size-normalised (``fx/W, fy/H, cx/W − ½, cy/H − ½``)."""
    Kn = torch.zeros_like(K)
    Kn[..., 0, 0] = K[..., 0, 0] / width
    Kn[..., 1, 1] = K[..., 1, 1] / height
    Kn[..., 0, 1] = K[..., 0, 1] / width
    Kn[..., 0, 2] = K[..., 0, 2] / width - 0.5
    Kn[..., 1, 2] = K[..., 1, 2] / height - 0.5
    Kn[..., 2, 2] = 1.0
    return Kn


def _lift(M3: Tensor) -> Tensor:
    out = torch.zeros(*M3.shape[:-2], 4, 4, dtype=M3.dtype, device=M3.device)
    out[..., :3, :3] = M3
    out[..., 3, 3] = 1.0
    return out


def projection_matrices(K: Tensor, c2w: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """``P = lift(K̃) · w2c`` and ``P⁻¹ = c2w · lift(K̃⁻¹)``, both ``[..., 4, 4]``; ``K`` in pixels of
    an ``height × width`` image, ``c2w`` OpenCV camera-to-world."""
    Kn = normalize_K(K, height, width)
    R, t = c2w[..., :3, :3], c2w[..., :3, 3:]
    w2c = torch.zeros_like(c2w)
    w2c[..., :3, :3] = R.transpose(-1, -2)
    w2c[..., :3, 3:] = -R.transpose(-1, -2) @ t
    w2c[..., 3, 3] = 1.0
    return _lift(Kn) @ w2c, c2w @ _lift(torch.linalg.inv(Kn))


def rope_coeffs(
    positions: Tensor, dim: int, base: float = 100.0, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """cos, sin ``[..., N, dim / 2]`` of 1-D RoPE for integer/float ``positions [..., N]``
    (frequencies ``base^(−k / (dim/2))``, the PRoPE reference's base 100), in ``dtype``."""
    if dim % 2:
        raise ValueError(f"RoPE slice needs an even size, got {dim}")
    n = dim // 2
    # float32 by default, not float64: compiled graphs fuse this into every kernel that
    # rotates, where float64 sin/cos cost more than the rotation itself
    freqs = base ** (-torch.arange(n, device=positions.device, dtype=dtype) / n)
    angles = positions.to(dtype)[..., None] * freqs
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor, inverse: bool = False) -> Tensor:
    """Rotate ``x [B, heads, N, dim]`` ("split" halves convention) by ``cos, sin [(B,) N, dim/2]``."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    if cos.ndim == 3:
        cos, sin = cos[:, None], sin[:, None]
    a, b = x.chunk(2, dim=-1)
    if inverse:
        return torch.cat([cos * a - sin * b, sin * a + cos * b], dim=-1)
    return torch.cat([cos * a + sin * b, -sin * a + cos * b], dim=-1)


def apply_projective(x: Tensor, M: Tensor) -> Tensor:
    """``(I ⊗ M_n) x_n``: ``x [B, heads, N, 4k]`` chunk-wise by per-token ``M [B, N, 4, 4]``
    (computed in at least float32, returned in ``x``'s dtype)."""
    B, Hh, N, d = x.shape
    chunks = x.reshape(B, Hh, N, d // 4, 4)
    dtype = torch.promote_types(x.dtype, torch.float32)  # P Pⱼ⁻¹ must cancel: not in bf16
    with torch.autocast(device_type=x.device.type, enabled=False):
        M, chunks = M.to(dtype), chunks.to(dtype)
        if torch.compiler.is_compiling():
            # a length-4 reduction inductor fuses with the casts and the concatenation around
            # it; as an einsum it becomes a batched fp32 GEMM with K = 4 plus layout copies
            out = (M[:, None, :, None] * chunks[..., None, :]).sum(-1)
        else:  # eagerly the broadcast would materialise a 4× larger intermediate
            out = torch.einsum("bnij,bhnkj->bhnki", M, chunks)
    return out.reshape(B, Hh, N, d).to(x.dtype)


def split_sizes(head_dim: int) -> tuple[int, int, int]:
    """``(projective, rope_x, rope_y)`` slice sizes of a head: ``d/2, d/4, d/4``."""
    if head_dim % 8:
        raise ValueError(f"PRoPE needs head_dim divisible by 8, got {head_dim}")
    return head_dim // 2, head_dim // 4, head_dim // 4


def grid_rope(
    xs: Tensor, ys: Tensor, head_dim: int, base: float = 100.0, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, ...]:
    """``(cos_x, sin_x, cos_y, sin_y)``, each ``[N, d/8]``, for token positions ``xs, ys [N]``."""
    _, dx, dy = split_sizes(head_dim)
    return (*rope_coeffs(xs, dx, base, dtype), *rope_coeffs(ys, dy, base, dtype))


def _split(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return x.split(list(split_sizes(x.shape[-1])), dim=-1)


def _rotate(x: Tensor, rope: tuple[Tensor, ...], inverse: bool) -> Tensor:
    """RoPE on the x / y slices of ``x [B, heads, N, d]``; the projective slice untouched."""
    xp, xx, xy = _split(x)
    cx, sx, cy, sy = rope
    return torch.cat([xp, apply_rope(xx, cx, sx, inverse), apply_rope(xy, cy, sy, inverse)], -1)


def _project(x: Tensor, M: Tensor) -> Tensor:
    """``(I ⊗ M)`` on the projective slice of ``x [B, heads, N, d]``."""
    xp, xx, xy = _split(x)
    return torch.cat([apply_projective(xp, M), xx, xy], dim=-1)


def prope_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    P: Tensor,
    P_inv: Tensor,
    rope: tuple[Tensor, ...],
    attn_mask: Tensor | None = None,
    rotate_values: bool = True,
) -> Tensor:
    """PRoPE attention (see module docstring) with one SDPA call.

    q, k, v ``[B, heads, N, d]``; ``P``, ``P_inv`` per-token ``[B, N, 4, 4]``; ``rope`` =
    ``grid_rope(xs, ys, d)``; ``attn_mask`` boolean ``[B, 1, 1|N, N]`` (True = attend).
    Returns ``[B, heads, N, d]``.
    """
    q, k, v = prope_qkv(q, k, v, P, P_inv, rope, rotate_values)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    return prope_output(out, P, rope, rotate_values)


def prope_qkv(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    P: Tensor,
    P_inv: Tensor,
    rope: tuple[Tensor, ...],
    rotate_values: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """The transformed ``q', k', v'`` of PRoPE attention (shapes as ``prope_attention``). ``k'``
    and ``v'`` depend only on their own token's camera and position, so they can be cached."""
    q = _project(_rotate(q, rope, False), P.transpose(-1, -2))
    k = _project(_rotate(k, rope, False), P_inv)
    v = _project(_rotate(v, rope, False) if rotate_values else v, P_inv)
    return q, k, v


def prope_output(
    out: Tensor, P: Tensor, rope: tuple[Tensor, ...], rotate_values: bool = True
) -> Tensor:
    """The query-side inverse transform of the attention output ``out [B, heads, N, d]``."""
    out = _project(out, P)
    return _rotate(out, rope, True) if rotate_values else out


def rope_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    rope: tuple[Tensor, ...],
    attn_mask: Tensor | None = None,
    rotate_values: bool = True,
) -> Tensor:
    """The camera-free baseline: 2D RoPE on the RoPE slices only (same layout as PRoPE)."""
    q, k = _rotate(q, rope, False), _rotate(k, rope, False)
    v = _rotate(v, rope, False) if rotate_values else v
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    return _rotate(out, rope, True) if rotate_values else out
