"""Parity of the pure-torch renderer with gsplat's CUDA rasteriser (needs CUDA and gsplat).

Tolerances (float32, random scenes of 500 Gaussians, 2 cameras, 128×96):
- rgb, alpha: mean |Δ| < 1e-3, max |Δ| < 2e-2 (differences come from fast-math ``exp`` and
  pixels whose alpha sits at the 1/255 or transmittance cut-offs);
- depth (where alpha > 0.05): mean |Δ|/z < 1e-3; 2dgs normals: mean |Δ| < 1e-3;
- gradients of a random linear loss w.r.t. means, colors, opacities: cosine similarity > 0.99
  (scales, quats: > 0.95).
Seen on an H200 (torch 2.11, CUDA 13): 3dgs max |Δ| ~3e-6, 2dgs max |Δ| ~9e-3 (threshold pixels),
mean |Δ| < 1e-5, every gradient cosine > 0.99999.
"""

import os
import time
from pathlib import Path

import pytest
import torch

if torch.cuda.is_available():  # gsplat JIT-compiles into this cache on first use (~70 s)
    os.environ.setdefault(
        "TORCH_EXTENSIONS_DIR",
        str(Path(__file__).resolve().parents[2] / ".wonderforge/cache/torch_extensions"),
    )

from models.geometry import look_at
from models.render.gaussians import (
    render_gaussians,
    resolve_backend,
    viewmats_from_c2w,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

W, H = 128, 96


@pytest.fixture(scope="module")
def cuda_gsplat():
    pytest.importorskip("gsplat")
    from models.render.gaussians_gsplat import gsplat_available

    assert gsplat_available(), "CUDA is present but gsplat's CUDA extension did not load"
    return torch.device("cuda")


def _scene(n: int, seed: int, device, batch: tuple[int, ...] = ()):
    g = torch.Generator().manual_seed(seed)
    shape = (*batch, n)
    means = (torch.rand(*shape, 3, generator=g) - 0.5) * 2.0
    quats = torch.randn(*shape, 4, generator=g)
    scales = torch.exp(torch.empty(*shape, 3).uniform_(-4.0, -1.9, generator=g))  # 0.018 - 0.15
    opac = torch.sigmoid(torch.randn(*shape, generator=g) * 1.5)
    colors = torch.rand(*shape, 3, generator=g)
    eyes = torch.tensor([[0.3, -0.4, -2.6], [-1.8, -0.8, -1.8]])
    c2w = look_at(eyes, torch.zeros(2, 3), torch.tensor([0.0, -1.0, 0.0]).expand(2, 3))
    viewmats = viewmats_from_c2w(c2w).expand(*batch, 2, 4, 4)
    K = torch.tensor([[110.0, 0, W / 2], [0, 110.0, H / 2], [0, 0, 1]]).expand(*batch, 2, 3, 3)
    return [t.to(device).contiguous() for t in (means, quats, scales, opac, colors, viewmats, K)]


def _render_with_grads(scene, backend, mode, weights):
    params = [t.clone().requires_grad_() for t in scene[:5]]
    out = render_gaussians(*params, *scene[5:], W, H, mode=mode, backend=backend)
    maps = [out.rgb, out.alpha, out.depth * out.alpha]
    if out.normals is not None:
        maps.append(out.normals)
    loss = sum((m * w).sum() for m, w in zip(maps, weights))
    loss.backward()
    return out, [p.grad for p in params]


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()


def test_auto_backend_uses_gsplat_on_cuda(cuda_gsplat):
    assert resolve_backend("auto", cuda_gsplat) == "gsplat"


@pytest.mark.parametrize("mode", ["3dgs", "2dgs"])
@pytest.mark.parametrize("seed", [0, 1])
def test_torch_matches_gsplat(cuda_gsplat, mode, seed):
    scene = _scene(500, seed, cuda_gsplat)
    g = torch.Generator(device=cuda_gsplat).manual_seed(seed + 10)
    weights = [
        torch.randn(2, c, H, W, generator=g, device=cuda_gsplat) for c in (3, 1, 1, 3)
    ]  # fmt: skip
    ref, ref_grads = _render_with_grads(scene, "gsplat", mode, weights)
    out, grads = _render_with_grads(scene, "torch", mode, weights)

    assert ref.alpha.mean() > 0.25  # the scene covers the images
    for name, a, b in [("rgb", out.rgb, ref.rgb), ("alpha", out.alpha, ref.alpha)]:
        diff = (a - b).abs()
        assert diff.mean() < 1e-3 and diff.max() < 2e-2, (name, diff.mean(), diff.max())
    mask = ref.alpha > 0.05
    rel = ((out.depth - ref.depth).abs() / ref.depth.clamp_min(1e-6))[mask]
    assert rel.mean() < 1e-3, rel.mean()
    if mode == "2dgs":
        diff = (out.normals - ref.normals).abs()
        assert diff.mean() < 1e-3, diff.mean()
    else:
        assert out.normals is None and ref.normals is None

    names = ["means", "quats", "scales", "opacities", "colors"]
    cos = {n: _cos(a, b) for n, a, b in zip(names, grads, ref_grads)}
    print(f"\n{mode} seed {seed} gradient cosine torch vs gsplat: {cos}")
    for n in ("means", "opacities", "colors"):
        assert cos[n] > 0.99, (n, cos)
    for n in ("scales", "quats"):
        assert cos[n] > 0.95, (n, cos)


@pytest.mark.parametrize("mode", ["3dgs", "2dgs"])
def test_batched_scenes_match_gsplat(cuda_gsplat, mode):
    scene = _scene(200, 3, cuda_gsplat, batch=(2,))
    bg = torch.tensor([0.2, 0.3, 0.4], device=cuda_gsplat)
    ref = render_gaussians(*scene, W, H, mode=mode, background=bg, backend="gsplat")
    out = render_gaussians(*scene, W, H, mode=mode, background=bg, backend="torch")
    assert out.rgb.shape == ref.rgb.shape == (2, 2, 3, H, W)
    diff = (out.rgb - ref.rgb).abs()
    assert diff.mean() < 1e-3 and diff.max() < 2e-2, (diff.mean(), diff.max())


@pytest.mark.parametrize("mode", ["3dgs", "2dgs"])
def test_timing(cuda_gsplat, mode):
    scene = _scene(20000, 4, cuda_gsplat)
    times = {}
    for backend in ("gsplat", "torch"):
        params = [t.clone().requires_grad_() for t in scene[:5]]
        for _ in range(4):  # warm-up, then time
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = render_gaussians(*params, *scene[5:], W * 4, H * 4, mode=mode, backend=backend)
            out.rgb.sum().backward()
            torch.cuda.synchronize()
            times[backend] = time.perf_counter() - t0
    print(
        f"\n{mode}: 20k Gaussians, 2 x {W * 4}x{H * 4}, fwd+bwd: gsplat {times['gsplat'] * 1e3:.1f}"
        f" ms, torch {times['torch'] * 1e3:.1f} ms"
    )
    assert times["gsplat"] > 0 and times["torch"] > 0
