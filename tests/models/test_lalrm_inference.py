"""LaLRM inference (torch): paper-config Gaussian-map shapes on the meta device, reconstruction
from latents and from video, chunked rendering, opacity pruning, the fly-through path; LPIPS."""

import pytest
import torch

from models.autoencoders import build_video_vae, encode
from models.geometry import plucker_rays
from models.lalrm import (
    LaLRM,
    flythrough_path,
    lalrm_config,
    prune_gaussians,
    reconstruct,
    reconstruct_from_video,
    render_cameras,
    scene_of,
)
from models.metrics import LPIPS
from tests.models.test_lalrm import cameras

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("upsample", "map_hw"), [(16, (480, 720)), (8, (240, 360))])
def test_paper_map_shape_on_meta_device(upsample, map_hw):
    """49 frames at 480x720 (latents 13x60x90x16): stage 1 gives a full-resolution map, stage 2
    half resolution; 49·240·360 = 4 233 600 Gaussians in stage 2 (D.2)."""
    with torch.device("meta"):
        model = LaLRM(lalrm_config("paper", upsample=upsample))
        gmap = model(torch.empty(1, 16, 13, 60, 90), torch.empty(1, 49, 6, 480, 720))
    assert gmap.device.type == "meta"
    assert gmap.shape == (1, 49, 12, *map_hw)
    assert model.map_size(480, 720) == map_hw
    assert len(model.blocks) == 24 and model.config.width == 1024
    params = sum(p.numel() for p in model.parameters())
    assert 300e6 < params < 330e6  # 24 blocks of width 1024 ≈ 302M + tokenizers + deconv


def test_reconstruct_matches_the_model_and_accepts_unbatched_inputs():
    torch.manual_seed(0)
    model = LaLRM(lalrm_config("tiny")).eval()
    K, c2w = cameras(1, 5, 32, 32)
    latents = torch.randn(1, 8, 2, 4, 4)
    with torch.no_grad():
        direct = model.gaussians(latents, plucker_rays(K, c2w, 32, 32), K, c2w)
    g = reconstruct(model, latents[0], K[0], c2w[0])
    assert g["means"].shape == (1, 5 * 32 * 32, 3)
    for key in ("means", "scales", "quats", "opacities", "colors"):
        assert torch.equal(g[key], direct[key]), key
    with pytest.raises(ValueError, match="latent frames need"):
        reconstruct(model, latents, K[:, :4], c2w[:, :4])


def test_reconstruct_from_video_encodes_with_the_vae():
    torch.manual_seed(0)
    model = LaLRM(lalrm_config("tiny")).eval()
    vae = build_video_vae("tiny").eval()
    K, c2w = cameras(1, 5, 32, 32, seed=3)
    frames = torch.rand(1, 5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    g = reconstruct_from_video(model, vae, frames, K, c2w)
    with torch.no_grad():
        expected = reconstruct(model, encode(vae, frames), K, c2w)
    torch.testing.assert_close(g["means"], expected["means"])
    torch.testing.assert_close(g["colors"], expected["colors"])


def test_render_cameras_in_chunks_equals_one_call_and_pruning_keeps_opaque():
    torch.manual_seed(0)
    model = LaLRM(lalrm_config("tiny")).eval()
    K, c2w = cameras(1, 5, 32, 32)
    scene = scene_of(reconstruct(model, torch.randn(1, 8, 2, 4, 4), K, c2w))
    assert scene["means"].shape == (5 * 32 * 32, 3) and set(scene) == {
        "means", "quats", "scales", "opacities", "colors"}  # fmt: skip
    one, alpha = render_cameras(scene, K[0], c2w[0], 32, 32, chunk=5, backend="torch")
    chunked, _ = render_cameras(scene, K[0], c2w[0], 32, 32, chunk=2, backend="torch")
    assert one.shape == (5, 3, 32, 32) and alpha.shape == (5, 1, 32, 32)
    torch.testing.assert_close(one, chunked)

    scene["opacities"] = torch.linspace(0, 1, len(scene["opacities"]))
    kept = prune_gaussians(scene, min_opacity=0.5)
    n = len(scene["opacities"])
    assert (
        len(kept["opacities"]) == (scene["opacities"] >= 0.5).sum()
        and kept["opacities"].min() >= 0.5
    )
    assert kept["means"].shape == (len(kept["opacities"]), 3)
    top = prune_gaussians(scene, min_opacity=0.0, max_count=10)
    torch.testing.assert_close(top["opacities"], scene["opacities"][n - 10 :])
    torch.testing.assert_close(top["means"], scene["means"][n - 10 :])


def test_flythrough_passes_through_the_first_and_last_context_cameras():
    K, c2w = cameras(1, 9, 32, 32, seed=2)
    K, c2w = K[0].clone(), c2w[0]
    K[-1, 0, 0] *= 2  # intrinsics change along the clip
    Kp, path = flythrough_path(K, c2w, 25, max_keys=5)
    assert Kp.shape == (25, 3, 3) and path.shape == (25, 4, 4)
    torch.testing.assert_close(path[0], c2w[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(path[-1], c2w[-1], atol=1e-5, rtol=0)
    torch.testing.assert_close(path[12], c2w[4], atol=1e-5, rtol=0)  # key 2 of 0, 2, 4, 6, 8
    torch.testing.assert_close(Kp[-1], K[-1])
    R = path[:, :3, :3]
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(25, 3, 3), atol=1e-5,
                               rtol=0)  # fmt: skip
    steps = (path[1:, :3, 3] - path[:-1, :3, 3]).norm(dim=-1)
    assert steps.max() < 3 * steps.mean()  # smooth: no jumps
    with pytest.raises(ValueError, match="num_frames"):
        flythrough_path(K, c2w, 0)


def test_lpips_loads_weights_and_measures_distance():
    torch.manual_seed(0)
    metric = LPIPS()
    state = {
        f"features.{k}": 0.05 * torch.randn_like(v) for k, v in metric.features.state_dict().items()
    }
    state.update({f"lin{k}.model.1.weight": torch.rand_like(lin.weight) for k, lin in
                  enumerate(metric.lins)})  # fmt: skip
    metric.load_weights(state)
    torch.testing.assert_close(metric.lins[2].weight, state["lin2.model.1.weight"])
    with pytest.raises(KeyError, match="lin4"):
        metric.load_weights({k: v for k, v in state.items() if not k.startswith("lin4")})
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    near = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    far = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    d_same, d_near, d_far = metric(x, x), metric(x, near), metric(x, far)
    assert d_same.shape == (2,) and torch.all(d_same == 0)
    assert torch.all(d_near > 0) and torch.all(d_far > d_near)
    with pytest.raises(ValueError, match="expected two"):
        metric(x, x[:, :2])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_reconstruct_and_gsplat_render_on_cuda():
    """bf16 inference on CUDA gives float32 Gaussians; gsplat and the torch renderer agree on
    the reconstructed scene (tolerances of tests/models/test_render_gaussians_gpu.py for the
    mean, a looser max for this dense pixel-aligned scene's cut-off pixels)."""
    from models.render.gaussians import resolve_backend

    if resolve_backend("auto", torch.device("cuda")) != "gsplat":
        pytest.skip("gsplat's CUDA extension is not available")
    torch.manual_seed(0)
    device = torch.device("cuda")
    model = LaLRM(lalrm_config("tiny")).to(device).eval()
    K, c2w = (t.to(device) for t in cameras(1, 9, 64, 64))
    g = reconstruct(model, torch.randn(1, 8, 3, 8, 8, device=device), K, c2w, dtype=torch.bfloat16)
    assert g["map"].dtype == torch.bfloat16 and g["means"].dtype == torch.float32
    scene = prune_gaussians(scene_of(g), 0.01)
    ref, _ = render_cameras(scene, K[0, :3], c2w[0, :3], 64, 64, backend="torch")
    fast, alpha = render_cameras(scene, K[0, :3], c2w[0, :3], 64, 64, backend="gsplat")
    assert alpha.mean() > 0.25
    diff = (ref - fast).abs()
    assert diff.mean() < 1e-3 and diff.max() < 5e-2, (diff.mean(), diff.max())
