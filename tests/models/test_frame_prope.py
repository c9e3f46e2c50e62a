"""PRoPE: invariance to a global change of world frame, reduction to 2D RoPE for identical cameras,
agreement with a dense matrix reference, and the projection convention."""

import math

import pytest
import torch

from models.frame.prope import (
    apply_projective,
    grid_rope,
    normalize_K,
    projection_matrices,
    prope_attention,
    rope_attention,
)
from models.geometry import make_K, project, random_rotation

HEAD_DIM, HEADS, HP, WP, VIEWS, IMG = 16, 2, 2, 3, 3, 48
N = HP * VIEWS * WP


pytestmark = pytest.mark.usefixtures("one_thread")


def rigid(g: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] = random_rotation(1, generator=g, dtype=torch.float64)[0]
    T[:3, 3] = torch.randn(3, generator=g, dtype=torch.float64) * scale
    return T


def cameras(B: int, g: torch.Generator):
    """K [B, V, 3, 3], c2w [B, V, 4, 4] (float64)."""
    f = 40 + 20 * torch.rand(B, VIEWS, generator=g, dtype=torch.float64)
    c = IMG / 2 + torch.randn(B, VIEWS, 2, generator=g, dtype=torch.float64)
    K = make_K(f, f * 1.1, c[..., 0], c[..., 1], dtype=torch.float64)
    c2w = torch.stack([torch.stack([rigid(g) for _ in range(VIEWS)]) for _ in range(B)])
    return K, c2w


def token_layout():
    """Width-concatenated grid (HP x VIEWS*WP, row-major): view id and in-view x, y per token."""
    cols = torch.arange(VIEWS * WP).repeat(HP)
    rows = torch.arange(HP).repeat_interleave(VIEWS * WP)
    return cols // WP, cols % WP, rows


def per_token(K, c2w):
    view, _, _ = token_layout()
    P, P_inv = projection_matrices(K, c2w, IMG, IMG)
    return P[:, view], P_inv[:, view]


def qkv(B: int, g: torch.Generator):
    return [torch.randn(B, HEADS, N, HEAD_DIM, generator=g, dtype=torch.float64) for _ in range(3)]


def rope():
    _, xs, ys = token_layout()
    return grid_rope(xs, ys, HEAD_DIM, dtype=torch.float64)


def _rot(pos: float, size: int, base: float = 100.0) -> torch.Tensor:
    """1-D "split halves" RoPE on a slice of ``size`` as a dense matrix."""
    R = torch.zeros(size, size, dtype=torch.float64)
    half = size // 2
    for i in range(half):
        a = pos * base ** (-i / half)
        c, s = math.cos(a), math.sin(a)
        R[i, i], R[i, i + half], R[i + half, i], R[i + half, i + half] = c, s, -s, c
    return R


def dense_reference(q, k, v, P, rotate_values=True):
    """Attention with explicit per-token d x d matrices (independent of the chunked einsums):
    q̃ = diag(I ⊗ P_nᵀ, R_n) q, k̃ = diag(I ⊗ P_m⁻¹, R_m) k, ṽ = diag(I ⊗ P_m⁻¹, R_m or I) v,
    out = diag(I ⊗ P_n, R_nᵀ or I) Σ softmax(q̃·k̃ / √d) ṽ. ``P = None``: identity cameras."""
    B, Hh, n, d = q.shape
    _, xs, ys = token_layout()
    Ip = torch.eye(d // 8, dtype=torch.float64)
    Id = torch.eye(d // 2, dtype=torch.float64)
    out = torch.zeros_like(q)
    for b in range(B):
        Dq, Dk, Dv, Do = [], [], [], []
        for t in range(n):
            Pt = torch.eye(4, dtype=torch.float64) if P is None else P[b, t]
            R = torch.block_diag(_rot(float(xs[t]), d // 4), _rot(float(ys[t]), d // 4))
            mats = (Pt.T, torch.linalg.inv(Pt), Pt)  # kron needs row-major inputs
            proj_q, proj_k, proj_o = (torch.kron(Ip, M.contiguous()) for M in mats)
            Dq.append(torch.block_diag(proj_q, R))
            Dk.append(torch.block_diag(proj_k, R))
            Dv.append(torch.block_diag(proj_k, R if rotate_values else Id))
            Do.append(torch.block_diag(proj_o, R.T if rotate_values else Id))
        for h in range(Hh):
            qt = torch.stack([Dq[t] @ q[b, h, t] for t in range(n)])
            kt = torch.stack([Dk[t] @ k[b, h, t] for t in range(n)])
            vt = torch.stack([Dv[t] @ v[b, h, t] for t in range(n)])
            o = torch.softmax(qt @ kt.T / math.sqrt(d), dim=-1) @ vt
            out[b, h] = torch.stack([Do[t] @ o[t] for t in range(n)])
    return out


@pytest.mark.parametrize("rotate_values", [True, False])
def test_invariant_to_one_rigid_transform_of_every_camera(rotate_values):
    g = torch.Generator().manual_seed(0)
    K, c2w = cameras(2, g)
    q, k, v = qkv(2, g)
    out = prope_attention(q, k, v, *per_token(K, c2w), rope(), rotate_values=rotate_values)
    G = rigid(g, scale=3.0)  # new world frame: X' = G X, so c2w' = G c2w
    moved = prope_attention(q, k, v, *per_token(K, G @ c2w), rope(), rotate_values=rotate_values)
    torch.testing.assert_close(moved, out, atol=1e-10, rtol=1e-10)
    # moving one camera alone changes the result: the encoding does carry the relative pose
    c2w_one = c2w.clone()
    c2w_one[:, 2] = G @ c2w[:, 2]
    changed = prope_attention(q, k, v, *per_token(K, c2w_one), rope(), rotate_values=rotate_values)
    assert (changed - out).abs().max() > 1e-3


@pytest.mark.parametrize("rotate_values", [True, False])
def test_identical_cameras_reduce_to_rope_attention(rotate_values):
    g = torch.Generator().manual_seed(1)
    K, c2w = cameras(2, g)
    K_same = K[:, :1].expand(-1, VIEWS, 3, 3)
    c2w_same = c2w[:, :1].expand(-1, VIEWS, 4, 4)  # not the identity: P P⁻¹ must cancel
    q, k, v = qkv(2, g)
    out = prope_attention(
        q, k, v, *per_token(K_same, c2w_same), rope(), rotate_values=rotate_values
    )
    plain = rope_attention(q, k, v, rope(), rotate_values=rotate_values)
    torch.testing.assert_close(out, plain, atol=1e-10, rtol=1e-10)
    ref = dense_reference(q, k, v, None, rotate_values=rotate_values)
    torch.testing.assert_close(plain, ref, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("rotate_values", [True, False])
def test_matches_a_dense_matrix_reference(rotate_values):
    g = torch.Generator().manual_seed(2)
    K, c2w = cameras(1, g)
    q, k, v = qkv(1, g)
    P, P_inv = per_token(K, c2w)
    out = prope_attention(q, k, v, P, P_inv, rope(), rotate_values=rotate_values)
    ref = dense_reference(q, k, v, P, rotate_values=rotate_values)
    torch.testing.assert_close(out, ref, atol=1e-9, rtol=1e-9)


def test_attention_mask_removes_keys():
    g = torch.Generator().manual_seed(3)
    K, c2w = cameras(1, g)
    q, k, v = qkv(1, g)
    view, _, _ = token_layout()
    keep = (view != 1)[None, None, None, :]
    out = prope_attention(q, k, v, *per_token(K, c2w), rope(), attn_mask=keep)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, view == 1] = torch.randn_like(k2[:, :, view == 1]) * 100
    v2[:, :, view == 1] = torch.randn_like(v2[:, :, view == 1]) * 100
    out2 = prope_attention(q, k2, v2, *per_token(K, c2w), rope(), attn_mask=keep)
    assert torch.equal(out[:, :, view != 1], out2[:, :, view != 1])


def test_projection_matrix_maps_world_to_normalised_pixels():
    g = torch.Generator().manual_seed(4)
    K, c2w = cameras(1, g)
    K, c2w = K[0, 0], c2w[0, 0]
    P, P_inv = projection_matrices(K, c2w, IMG, 2 * IMG)
    torch.testing.assert_close(P @ P_inv, torch.eye(4, dtype=torch.float64), atol=1e-12, rtol=0)
    cam_pts = torch.randn(5, 3, dtype=torch.float64) * 0.3 + torch.tensor([0, 0, 3.0])
    world = cam_pts @ c2w[:3, :3].T + c2w[:3, 3]
    uv, _ = project(world, K, c2w)
    h = torch.cat([world, torch.ones(5, 1, dtype=torch.float64)], 1) @ P.T
    got = h[:, :2] / h[:, 2:3]
    expected = uv / torch.tensor([2 * IMG, IMG], dtype=torch.float64) - 0.5
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)
    Kn = normalize_K(K, IMG, 2 * IMG)
    assert float(Kn[0, 0]) == pytest.approx(float(K[0, 0]) / (2 * IMG))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_compiled_projective_transform_matches_the_eager_einsum(dtype):
    """Under torch.compile the chunk-wise ``(I ⊗ M) x`` is a fused length-4 reduction instead of
    the eager einsum: both give the same values (traced with dynamo, no inductor on CPU)."""
    g = torch.Generator().manual_seed(5)
    K, c2w = cameras(2, g)
    P, _ = per_token(K, c2w)
    x = torch.randn(2, HEADS, N, HEAD_DIM // 2, generator=g).to(dtype)
    eager = apply_projective(x, P.float())
    torch._dynamo.reset()
    compiled = torch.compile(apply_projective, backend="eager", fullgraph=True)(x, P.float())
    assert compiled.dtype == dtype
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    reference = torch.einsum("bnij,bhnkj->bhnki", P, x.double().reshape(2, HEADS, N, -1, 4))
    torch.testing.assert_close(compiled.double(), reference.reshape_as(x), rtol=1e-2, atol=1e-2)


def test_float32_rope_coefficients_agree_with_float64():
    """The models' default float32 coefficients (cheap inside fused kernels) are the float64
    ones to float32 rounding, over a grid side the paper size uses (64 tokens)."""
    xs = torch.arange(64).repeat(64)
    ys = torch.arange(64).repeat_interleave(64)
    lo, hi = grid_rope(xs, ys, 72), grid_rope(xs, ys, 72, dtype=torch.float64)
    assert all(c.dtype == torch.float32 for c in lo)
    for a, b in zip(lo, hi):
        torch.testing.assert_close(a.double(), b, rtol=0, atol=2e-5)
