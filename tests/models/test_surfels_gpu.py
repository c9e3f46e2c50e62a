"""Scale-adaptive surfels through gsplat's 2DGS rasteriser (needs CUDA and gsplat): the surfel
plane's depth and the modulated image agree with the pure-torch backend."""

import os
from pathlib import Path

import pytest
import torch

if torch.cuda.is_available():  # gsplat JIT-compiles into this cache on first use (~70 s)
    os.environ.setdefault(
        "TORCH_EXTENSIONS_DIR",
        str(Path(__file__).resolve().parents[2] / ".wonderforge/cache/torch_extensions"),
    )

from models.surfels import SurfelSet, merge, render_surfels

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

F, W, H = 40.0, 32, 32
LEVELS = torch.tensor([0.0, 1.0])


def _plane(z, spacing, native, color):
    half = 1.2 * z * W / (2 * F)
    g = torch.arange(-half, half + 1e-9, spacing)
    yy, xx = torch.meshgrid(g, g, indexing="ij")
    n = xx.numel()
    return SurfelSet(
        torch.stack([xx.flatten(), yy.flatten(), torch.full((n,), z)], -1),
        torch.tensor([1.0, 0, 0, 0]).expand(n, 4).clone(),
        torch.full((n, 2), spacing),
        torch.full((n,), 0.9),
        torch.tensor(color).expand(n, 3).clone(),
        torch.full((n,), native),
    )


def test_gsplat_surfel_plane_depth_and_parity():
    surfels = merge(_plane(2.0, 0.1, 0.0, (1.0, 0, 0)), _plane(2.0, 0.05, 1.0, (0, 0, 1.0)))
    K = torch.tensor([[[F, 0, W / 2], [0, F, H / 2], [0, 0, 1]]])
    vm = torch.eye(4)[None]
    for rho in (0.0, 0.5, 1.0):
        gpu = render_surfels(surfels.to("cuda"), vm.cuda(), K.cuda(), W, H, LEVELS.cuda(),
                             render_log_scale=rho, backend="gsplat")  # fmt: skip
        cpu = render_surfels(surfels, vm, K, W, H, LEVELS, render_log_scale=rho, backend="torch")
        covered = gpu.alpha[0, 0] > 0.5
        assert covered.float().mean() == 1.0
        assert (gpu.depth[0, 0][covered] - 2.0).abs().max().item() < 1e-4
        assert (gpu.rgb.cpu() - cpu.rgb).abs().mean() < 1e-3
