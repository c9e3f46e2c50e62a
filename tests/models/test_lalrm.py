"""LaLRM model: tokenizer counts and ordering (causal first frame), Gaussian-map shapes, pixel
alignment and activation bounds, deconv-stride adaptation, end-to-end gradients through the
renderer, VGG-19 perceptual loss."""

import math

import pytest
import torch

from models.geometry import look_at, make_K, plucker_rays, project
from models.lalrm import (
    LaLRM,
    LatentTokenizer,
    PluckerTokenizer,
    VGG19PerceptualLoss,
    adapt_state_dict,
    gaussians_from_map,
    lalrm_config,
    pad_causal_frames,
    render_views,
    vgg19_layer_names,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def cameras(B: int, F: int, H: int, W: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``K [B, F, 3, 3]`` and ``c2w [B, F, 4, 4]`` (float32): cameras on an arc looking at a point
    3 units ahead, with a little random jitter."""
    g = torch.Generator().manual_seed(seed)
    angles = torch.linspace(-0.3, 0.3, F).repeat(B, 1) + 0.05 * torch.randn(B, F, generator=g)
    eye = torch.stack(
        [3 * torch.sin(angles), 0.1 * torch.randn(B, F, generator=g), 3 - 3 * torch.cos(angles)], -1
    )
    target = torch.tensor([0.0, 0.0, 3.0]).expand_as(eye)
    up = torch.tensor([0.0, -1.0, 0.0]).expand_as(eye)
    c2w = look_at(eye, target, up).float()
    K = make_K(0.9 * W, 1.1 * W, W / 2, H / 2).float().expand(B, F, 3, 3)
    return K, c2w


# ---- tokenizers ------------------------------------------------------------------------------


def summing_conv_(conv: torch.nn.Conv3d) -> None:
    """Output channel 0 = sum of the receptive field, the others 0."""
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0] = 1.0
        conv.bias.zero_()


def test_causal_padding_groups_frames_like_the_vae():
    x = torch.arange(9.0).view(1, 1, 9, 1, 1)
    padded = pad_causal_frames(x)
    assert padded.flatten().tolist() == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    with pytest.raises(ValueError, match="4k"):
        pad_causal_frames(torch.zeros(1, 1, 8, 1, 1))


@pytest.mark.parametrize(("frame", "latent_t"), [(0, 0), (1, 1), (3, 1), (4, 1), (5, 2), (8, 2)])
def test_plucker_marker_lands_on_the_token_of_its_latent(frame, latent_t):
    """Latents [B, C, 3, 4, 6] (F = 9, 32x48 px), patch 2: a marker in pixel frame f and latent
    patch (y, x) gives the same token index in both tokenizers."""
    p, C = 2, 8
    T, h, w = 3, 4, 6
    lat_tok, pl_tok = LatentTokenizer(C, 4, p), PluckerTokenizer(4, (4, 8 * p, 8 * p))
    summing_conv_(lat_tok.proj)
    summing_conv_(pl_tok.proj)
    ty, tx = 1, 2  # token row / column
    latents = torch.zeros(1, C, T, h, w)
    latents[0, 3, latent_t, ty * p + 1, tx * p] = 1.0
    plucker = torch.zeros(1, 4 * (T - 1) + 1, 6, 8 * h, 8 * w)
    plucker[0, frame, 5, ty * 16 + 7, tx * 16 + 3] = 1.0

    a, grid_a = lat_tok(latents)
    b, grid_b = pl_tok(plucker)
    assert grid_a == grid_b == (T, h // p, w // p)
    assert a.shape == b.shape == (1, T * (h // p) * (w // p), 4)
    expected = latent_t * (h // p) * (w // p) + ty * (w // p) + tx
    assert a[0, :, 0].nonzero().flatten().tolist() == [expected]
    assert b[0, :, 0].nonzero().flatten().tolist() == [expected]


def test_first_frame_rays_fill_the_first_token_alone():
    """Frame 0 is replicated 3x: its token sums 4 copies; no other token sees frame 0."""
    tok = PluckerTokenizer(2, (4, 16, 16))
    summing_conv_(tok.proj)
    plucker = torch.zeros(1, 9, 6, 16, 16)
    plucker[0, 0] = 1.0
    tokens, _ = tok(plucker)
    assert tokens[0, :, 0].tolist() == [4 * 6 * 16 * 16, 0.0, 0.0]


# ---- model -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("stage_upsample", "map_size"), [(16, 64), (8, 32)])
def test_tiny_map_shape(stage_upsample, map_size):
    torch.manual_seed(0)
    model = LaLRM(lalrm_config("tiny", upsample=stage_upsample)).eval()
    B, F, S = 2, 9, 64
    K, c2w = cameras(B, F, S, S)
    latents = torch.randn(B, 8, 3, S // 8, S // 8)
    with torch.no_grad():
        gmap = model(latents, plucker_rays(K, c2w, S, S))
    assert gmap.shape == (B, F, 12, map_size, map_size)
    assert model.map_size(S, S) == (map_size, map_size)
    with pytest.raises(ValueError, match="Plücker"):
        model(latents, plucker_rays(K[:, :5], c2w[:, :5], S, S))


def test_gaussians_are_pixel_aligned_and_bounded():
    B, F, H, W = 2, 3, 12, 16
    near, far, smin, smax = 0.5, 10.0, 0.1, 32.0
    K, c2w = cameras(B, F, H, W, seed=1)
    gmap = 3 * torch.randn(B, F, 12, H, W, generator=torch.Generator().manual_seed(2))
    g = gaussians_from_map(gmap, K, c2w, near, far, smin, smax)
    N = F * H * W
    assert g["means"].shape == (B, N, 3) and g["quats"].shape == (B, N, 4)
    assert g["scales"].shape == (B, N, 3) and g["opacities"].shape == (B, N)
    assert g["colors"].shape == (B, N, 3)

    # on the ray of its pixel, at the predicted distance
    offset = g["means"] - g["origins"]
    cross = torch.linalg.cross(offset, g["directions"], dim=-1)
    assert cross.norm(dim=-1).max() < 1e-4
    along = (offset * g["directions"]).sum(-1)
    torch.testing.assert_close(along, g["distances"], rtol=1e-5, atol=1e-5)
    assert g["distances"].min() >= near and g["distances"].max() <= far
    # ... and it projects back onto the centre of that pixel in its own camera
    means = g["means"].view(B, F, H * W, 3)
    uv, z = project(means, K, c2w)
    vv, uu = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    expected = torch.stack([uu, vv], -1).reshape(1, 1, H * W, 2).expand_as(uv)
    torch.testing.assert_close(uv, expected, rtol=0, atol=1e-3)

    # activations
    torch.testing.assert_close(g["quats"].norm(dim=-1), torch.ones(B, N))
    assert ((g["opacities"] > 0) & (g["opacities"] < 1)).all()
    assert ((g["colors"] >= 0) & (g["colors"] <= 1)).all()
    focal = 0.5 * (K[..., 0, 0] + K[..., 1, 1])  # [B, F]
    pixels = g["scales"].view(B, F, H * W, 3) * focal[..., None, None] / z[..., None]
    assert pixels.min() >= smin * (1 - 1e-5) and pixels.max() <= smax * (1 + 1e-5)


def test_scale_is_resolution_aware():
    """The same raw values on a half-resolution map (half the focal) give Gaussians twice as
    large relative to their depth: the same fraction of the image."""
    H, W = 8, 8
    K, c2w = cameras(1, 1, H, W)
    raw = torch.randn(12, generator=torch.Generator().manual_seed(0))

    def scale_over_depth(K, H, W):
        g = gaussians_from_map(raw.view(1, 1, 12, 1, 1).expand(1, 1, 12, H, W), K, c2w, 0.5, 10.0)
        _, z = project(g["means"], K[:, 0], c2w[:, 0])
        return g["scales"] / z[..., None]

    full = scale_over_depth(K, H, W)
    K_half = K.clone()
    K_half[..., :2, :] *= 0.5
    half = scale_over_depth(K_half, H // 2, W // 2)
    torch.testing.assert_close(half, 2 * full[:, :1].expand_as(half), rtol=1e-4, atol=1e-7)


def test_zero_map_gives_identity_rotation_and_initial_values():
    g = gaussians_from_map(
        torch.zeros(1, 1, 12, 2, 2), *cameras(1, 1, 2, 2), 1.0, 3.0, opacity_bias=-2.0
    )
    torch.testing.assert_close(g["quats"], torch.tensor([1.0, 0, 0, 0]).expand(1, 4, 4))
    torch.testing.assert_close(g["distances"], torch.full((1, 4), 2.0))
    torch.testing.assert_close(g["opacities"], torch.full((1, 4), 1 / (1 + math.exp(2.0))))


def test_deconv_stride_adaptation_averages_the_map():
    """A stage-1 model (stride 16) adapted to stride 8 outputs the 2x2 means of its map."""
    torch.manual_seed(0)
    low = LaLRM(lalrm_config("tiny")).eval()
    high = LaLRM(lalrm_config("tiny", upsample=8)).eval()
    with pytest.raises(RuntimeError):
        high.load_state_dict(low.state_dict())
    high.load_state_dict(adapt_state_dict(low.state_dict(), high))
    K, c2w = cameras(1, 5, 32, 32)
    latents, plucker = torch.randn(1, 8, 2, 4, 4), plucker_rays(K, c2w, 32, 32)
    with torch.no_grad():
        a, b = low(latents, plucker), high(latents, plucker)
    pooled = torch.nn.functional.avg_pool2d(a.flatten(0, 1), 2).view_as(b)
    torch.testing.assert_close(b, pooled, rtol=1e-4, atol=1e-5)


def test_rendering_is_differentiable_end_to_end():
    """Gradients of a photometric loss reach the first layers (both tokenizers) through the
    torch rasteriser."""
    torch.manual_seed(0)
    model = LaLRM(lalrm_config("tiny"))
    B, F, S = 1, 5, 32
    K, c2w = cameras(B, F, S, S)
    latents = torch.randn(B, 8, 2, S // 8, S // 8)
    g = model.gaussians(latents, plucker_rays(K, c2w, S, S), K, c2w)
    out = render_views(g, K[:, :2], c2w[:, :2], S, S, background=torch.ones(3), backend="torch")
    assert out.rgb.shape == (B, 2, 3, S, S) and out.alpha.shape == (B, 2, 1, S, S)
    assert out.alpha.mean() > 0.5  # the context Gaussians cover their own views
    target = torch.rand(B, 2, 3, S, S, generator=torch.Generator().manual_seed(1))
    (out.rgb - target).pow(2).mean().backward()
    for name in (
        "tokenizer.latent.proj.weight",
        "tokenizer.plucker.proj.weight",
        "decoder.deconv.weight",
    ):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_gradient_checkpointing_matches_plain_backward():
    torch.manual_seed(0)
    model = LaLRM(lalrm_config("tiny"))
    K, c2w = cameras(1, 5, 32, 32)
    latents, plucker = torch.randn(1, 8, 2, 4, 4), plucker_rays(K, c2w, 32, 32)
    grads = []
    for flag in (False, True):
        model.zero_grad()
        model.gradient_checkpointing = flag
        model(latents, plucker).square().mean().backward()
        grads.append(model.blocks[0].attn.qkv.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


# ---- VGG-19 perceptual loss ------------------------------------------------------------------


def test_vgg19_perceptual_loads_torchvision_keys_and_compares_features():
    assert len(vgg19_layer_names()) == 37 and vgg19_layer_names()[31] == "relu5_2"
    torch.manual_seed(0)
    loss = VGG19PerceptualLoss()
    assert len(loss.features) == 32  # cut after relu5_2
    # a torchvision-style state dict (deeper layers and a classifier are ignored)
    state = {
        f"features.{k}": torch.randn_like(v) * 0.05 for k, v in loss.features.state_dict().items()
    }
    state["features.34.weight"] = torch.zeros(512, 512, 3, 3)
    state["classifier.0.weight"] = torch.zeros(4, 4)
    loss.load_features(state)
    torch.testing.assert_close(loss.features[0].weight, state["features.0.weight"])
    with pytest.raises(KeyError, match=r"features\.30\.bias"):
        loss.load_features({k: v for k, v in state.items() if k != "features.30.bias"})

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    assert loss(x, x).item() == 0.0
    pred = y.clone().requires_grad_(True)
    value = loss(pred, x)
    value.backward()
    assert value.item() > 0 and pred.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.parameters())


# ---- GPU: bf16 + gsplat ------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_forward_backward_with_gsplat():
    from models.render.gaussians import resolve_backend

    if resolve_backend("auto", torch.device("cuda")) != "gsplat":
        pytest.skip("gsplat's CUDA extension is not available")
    torch.manual_seed(0)
    device = torch.device("cuda")
    model = LaLRM(lalrm_config("tiny", gradient_checkpointing=True)).to(device).train()
    B, F, S = 2, 9, 64
    K, c2w = (t.to(device) for t in cameras(B, F, S, S))
    latents = torch.randn(B, 8, 3, S // 8, S // 8, device=device)
    target = torch.rand(B, 4, 3, S, S, device=device)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        g = model.gaussians(latents, plucker_rays(K, c2w, S, S), K, c2w)
        assert g["map"].dtype == torch.bfloat16
        offset = g["means"] - g["origins"]  # centres stay on their rays under autocast
        assert torch.linalg.cross(offset, g["directions"], dim=-1).norm(dim=-1).max() < 1e-4
        out = render_views(g, K[:, :4], c2w[:, :4], S, S, backend="gsplat")
        loss = (out.rgb - target).pow(2).mean()
    assert out.rgb.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    grad = model.tokenizer.latent.proj.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
