"""Camera-guided sampling: frame count, determinism, relative cameras, a playable mp4."""

import pytest
import torch
from diffusers import AutoencoderKLCogVideoX

from datagen.video_io import read_mp4, write_mp4
from models.geometry import look_at
from models.video import (
    CameraGuidedCogVideoX,
    CameraVideoSampler,
    TextEncoder,
    build_base,
    make_scheduler,
)

H, W, FRAMES = 32, 48, 9

TINY_VAE = dict(
    down_block_types=["CogVideoXDownBlock3D"] * 4,
    up_block_types=["CogVideoXUpBlock3D"] * 4,
    block_out_channels=[8, 8, 16, 16],
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=4,
    scaling_factor=0.7,
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    base = build_base(
        dict(
            num_attention_heads=2,
            attention_head_dim=16,
            in_channels=8,
            out_channels=4,
            time_embed_dim=32,
            text_embed_dim=16,
            num_layers=2,
            sample_width=W // 8,
            sample_height=H // 8,
            sample_frames=FRAMES,
            max_text_seq_length=8,
            use_rotary_positional_embeddings=True,
        )
    )
    model = CameraGuidedCogVideoX(
        base, dict(num_ctrl_blocks=1, lora_rank=4, camera_channels=[8, 8, 8])
    ).eval()
    with torch.no_grad():  # trained-looking weights, so the camera actually matters
        for p in model.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.3)
    vae = AutoencoderKLCogVideoX.from_config(TINY_VAE).eval()
    text = TextEncoder.tiny(d_model=16, num_layers=1, num_heads=2, d_ff=32, max_length=8)
    return model, vae, text


def cameras(n: int = FRAMES):
    eyes = torch.stack([torch.linspace(0, 0.5, n), torch.zeros(n), torch.zeros(n)], -1)
    forward = torch.tensor([0.0, 0.0, 1.0]).expand(n, 3)
    c2w = look_at(eyes, eyes + forward, torch.tensor([0.0, -1.0, 0.0]).expand(n, 3)).float()
    K = torch.tensor([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]]).expand(n, 3, 3)
    return K, c2w


def test_sampler_frame_count_determinism_and_mp4(parts, tmp_path):
    model, vae, text = parts
    sampler = CameraVideoSampler(model, vae, text, make_scheduler("ddim"))
    image = torch.rand(3, H, W, generator=torch.Generator().manual_seed(0))
    K, c2w = cameras(13)  # more cameras than frames: the first FRAMES are used
    kw = dict(prompt="a room", num_frames=FRAMES, steps=3, guidance_scale=4.0)
    latents, frames = sampler.sample(image, K, c2w, seed=7, **kw)
    assert latents.shape == (1, 4, 3, H // 8, W // 8)
    assert frames.shape == (FRAMES, 3, H, W)
    assert 0.0 <= float(frames.min()) and float(frames.max()) <= 1.0
    again, _ = sampler.sample(image, K, c2w, seed=7, decode=False, **kw)
    other, _ = sampler.sample(image, K, c2w, seed=8, decode=False, **kw)
    assert torch.equal(latents, again) and not torch.allclose(latents, other)

    path = write_mp4(frames, tmp_path / "out" / "video.mp4", fps=8)
    video = read_mp4(path)
    assert video.shape == (FRAMES, H, W, 3)
    # lossy, but the decoded mp4 is the same video
    assert abs(video.astype(float).mean() / 255 - float(frames.mean())) < 0.05


def test_sampler_uses_cameras_relative_to_the_first(parts):
    """A rigid change of the world frame leaves the video unchanged; another path changes it."""
    model, vae, text = parts
    sampler = CameraVideoSampler(model, vae, text, make_scheduler("ddim"))
    image = torch.rand(3, H, W, generator=torch.Generator().manual_seed(1))
    K, c2w = cameras()
    G = torch.eye(4)
    G[:3, :3] = torch.linalg.matrix_exp(
        torch.tensor([[0, -0.3, 0.2], [0.3, 0, -0.1], [-0.2, 0.1, 0]])
    )
    G[:3, 3] = torch.tensor([1.0, -2.0, 0.5])
    kw = dict(steps=2, guidance_scale=1.0, seed=3, decode=False)
    a, _ = sampler.sample(image, K, c2w, **kw)
    b, _ = sampler.sample(image, K, G @ c2w, **kw)
    turned = c2w.clone()
    turned[:, :3, 3] = turned[:, :3, 3].flip(-1)  # move along z instead of x
    c, _ = sampler.sample(image, K, turned, **kw)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert (a - c).abs().max() > 1e-2, float((a - c).abs().max())


def test_dpm_scheduler_and_text_embeds(parts):
    model, vae, _ = parts
    sampler = CameraVideoSampler(model, vae, None, make_scheduler("dpm"))
    K, c2w = cameras()
    embeds = torch.randn(2, 8, 16)
    latents, frames = sampler.sample(
        torch.rand(3, H, W), K, c2w, steps=3, guidance_scale=5.0, text_embeds=embeds
    )
    assert frames.shape == (FRAMES, 3, H, W) and torch.isfinite(latents).all()
    with pytest.raises(ValueError, match="4k \\+ 1"):
        sampler.sample(torch.rand(3, H, W), K, c2w, num_frames=8, text_embeds=embeds)
