"""World generation on CUDA (needs gsplat): a zoom step runs on the GPU, and rendering the world
with gsplat's 2DGS agrees with the pure-torch backend."""

import os
from pathlib import Path

import pytest
import torch

if torch.cuda.is_available():  # gsplat JIT-compiles into this cache on first use (~70 s)
    os.environ.setdefault(
        "TORCH_EXTENSIONS_DIR",
        str(Path(__file__).resolve().parents[2] / ".wonderforge/cache/torch_extensions"),
    )

from models.geometry import K_from_fov
from models.worldgen import (
    AnalyticImageModel,
    PlaneDepth,
    SynthesisConfig,
    WorldModels,
    initial_world,
    render_world,
    zoom_step,
)
from models.zoom.toy import toy_targets

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_zoom_step_on_cuda_and_gsplat_matches_torch():
    dev = torch.device("cuda")
    S = 64
    image = (toy_targets(1, 3, S, 2, generator=torch.Generator().manual_seed(0))[0] + 1) / 2
    plane = PlaneDepth(torch.tensor([0.0, 0.0, 3.0]), torch.tensor([0.2, 0.1, -1.0]))
    models = WorldModels(AnalyticImageModel(), plane)
    cfg = SynthesisConfig(steps=10, fit_steps=5, refine_steps=20, backend="gsplat")
    K = K_from_fov(50.0, S, S, dtype=torch.float64)
    world = initial_world(image.to(dev), K, torch.eye(4, dtype=torch.float64), "a", models, cfg)
    world = zoom_step(world, "b", models, cfg)
    assert world.surfels.means.is_cuda and len(world.levels) == 2
    lv = world.levels[1]
    fast = render_world(world, lv.K, lv.c2w, backend="gsplat")
    ref = render_world(world, lv.K, lv.c2w, backend="torch")
    torch.testing.assert_close(fast.rgb, ref.rgb, atol=2e-3, rtol=0)
    torch.testing.assert_close(fast.alpha, ref.alpha, atol=2e-3, rtol=0)
    covered = ref.alpha[0, 0] > 0.5
    rel = (fast.depth[0, 0] - ref.depth[0, 0]).abs() / ref.depth[0, 0].clamp_min(1e-6)
    assert rel[covered].max() < 1e-3
