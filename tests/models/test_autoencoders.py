"""Autoencoders: VAE shapes (video ×4 / ×8, image ×8), pixel ↔ latent helpers, scaling factor,
the pretrained-free perceptual loss, and save_pretrained → local from_pretrained."""

import copy
import itertools
import json
import math
from types import SimpleNamespace

import pytest
import torch
from diffusers import AutoencoderKL, AutoencoderKLCogVideoX
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from torch import nn

from models.autoencoders import (
    PyramidPerceptualLoss,
    build_image_vae,
    build_video_vae,
    decode,
    encode,
    estimate_scaling_factor,
    image_vae_config,
    latent_num_frames,
    load_image_vae,
    load_video_vae,
    model_to_pixels,
    pixels_to_model,
    video_vae_config,
)
from models.autoencoders.perceptual import gaussian_kernel1d, separable_filter

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def video_vae():
    torch.manual_seed(0)
    return build_video_vae("tiny").eval()


@pytest.fixture(scope="module")
def image_vae():
    torch.manual_seed(0)
    return build_image_vae("tiny").eval()


def smooth_images(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """``[n, 3, H, W]`` in [0.1, 0.9]: low-frequency sinusoids with random phases."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij"
    )
    freq = 1 + 2 * torch.rand(n, 3, 2, 1, 1, generator=g)
    phase = 2 * math.pi * torch.rand(n, 3, 1, 1, generator=g)
    return 0.5 + 0.4 * torch.sin(2 * math.pi * (freq[:, :, 0] * xx + freq[:, :, 1] * yy) + phase)


def textured_image() -> torch.Tensor:
    """``[1, 3, 64, 64]`` with structure at every scale (checkers, sinusoids, noise)."""
    g = torch.Generator().manual_seed(3)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    checker = ((xx // 8 + yy // 8) % 2).expand(3, -1, -1)
    image = (
        0.4 * checker + 0.3 * smooth_images(1, 64, 64)[0] + 0.2 * torch.rand(3, 64, 64, generator=g)
    )
    return image[None].clamp(0, 1)


class IdentityVAE(nn.Module):
    """Latent = model-range input (mean, near-zero variance): exposes the helpers' conversions."""

    def __init__(self, scaling_factor: float, shift_factor: float | None):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))
        self.config = SimpleNamespace(
            scaling_factor=scaling_factor, shift_factor=shift_factor, temporal_compression_ratio=1
        )
        self.seen: list[torch.Tensor] = []

    def encode(self, x):
        self.seen.append(x)
        params = torch.cat([x, torch.full_like(x, -30.0)], dim=1)
        return SimpleNamespace(latent_dist=DiagonalGaussianDistribution(params))

    def decode(self, z):
        return SimpleNamespace(sample=z)


@torch.no_grad()
def test_tiny_video_vae_compresses_time_4x_and_space_8x(video_vae):
    for frames, latent_frames in ((9, 3), (17, 5)):
        x = torch.rand(1, 3, frames, 64, 64) * 2 - 1
        z = video_vae.encode(x).latent_dist.mode()
        assert z.shape == (1, 8, latent_frames, 8, 8)
        assert latent_frames == latent_num_frames(frames)
        assert video_vae.decode(z).sample.shape == x.shape
    assert latent_num_frames(49) == 13
    with pytest.raises(ValueError, match="4k \\+ 1"):
        latent_num_frames(8)


@torch.no_grad()
def test_tiny_image_vae_compresses_space_8x(image_vae):
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    z = image_vae.encode(x).latent_dist.mode()
    assert z.shape == (2, 4, 8, 6)
    assert image_vae.decode(z).sample.shape == x.shape


def test_paper_configs_match_the_published_models():
    video = video_vae_config("paper")
    assert video["latent_channels"] == 16 and video["scaling_factor"] == 0.7
    assert video["block_out_channels"] == (128, 256, 256, 512) and video["layers_per_block"] == 3
    assert video["temporal_compression_ratio"] == 4 and len(video["down_block_types"]) == 4
    image = image_vae_config("paper")
    assert image["latent_channels"] == 4 and image["scaling_factor"] == 0.13025
    assert image["block_out_channels"] == (128, 256, 512, 512)
    assert video_vae_config("tiny", latent_channels=4)["latent_channels"] == 4
    with pytest.raises(ValueError, match="unknown video VAE size"):
        video_vae_config("huge")


def test_layouts_and_range_convert_at_one_place():
    frames = torch.rand(2, 9, 3, 8, 8)
    model_in = pixels_to_model(frames)
    assert model_in.shape == (2, 3, 9, 8, 8)
    torch.testing.assert_close(model_in[:, :, 4], frames[:, 4] * 2 - 1)
    torch.testing.assert_close(model_to_pixels(model_in), frames)
    assert pixels_to_model(torch.ones(1, 3, 4, 4)).eq(1).all()
    assert pixels_to_model(torch.zeros(1, 3, 4, 4)).eq(-1).all()


def test_encode_decode_round_trip_through_an_identity_vae():
    vae = IdentityVAE(scaling_factor=0.5, shift_factor=0.1)
    frames = torch.rand(2, 5, 3, 8, 8)
    latents = encode(vae, frames)
    assert latents.shape == (2, 3, 5, 8, 8)
    assert vae.seen[-1].min() >= -1 and vae.seen[-1].max() <= 1
    expected = (frames.transpose(1, 2) * 2 - 1 - 0.1) * 0.5
    torch.testing.assert_close(latents, expected)
    torch.testing.assert_close(decode(vae, latents), frames)
    images = torch.rand(3, 3, 8, 8)
    torch.testing.assert_close(decode(vae, encode(vae, images)), images)
    out_of_range = torch.full((1, 3, 4, 4), 0.8)
    assert decode(vae, out_of_range).max() == 1.0
    assert decode(vae, out_of_range, clamp=False).max() > 1.0


@torch.no_grad()
def test_helpers_on_the_tiny_vaes_give_layouts_and_range(video_vae, image_vae):
    frames = smooth_images(9, 64, 64).reshape(1, 9, 3, 64, 64)
    latents = encode(video_vae, frames)
    assert latents.shape == (1, 8, 3, 8, 8)
    out = decode(video_vae, latents)
    assert out.shape == frames.shape and out.min() >= 0 and out.max() <= 1
    images = smooth_images(2, 64, 64)
    out = decode(image_vae, encode(image_vae, images, sample=True))
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="odd count"):
        decode(video_vae, torch.zeros(1, 8, 2, 8, 8))
    with pytest.raises(ValueError, match="4k \\+ 1"):
        encode(video_vae, torch.rand(1, 8, 3, 64, 64))


def test_scaling_factor_gives_unit_std_latents(image_vae):
    z = 3.0 * torch.randn(4, 4, 8, 8) + 0.5
    assert estimate_scaling_factor(z) == pytest.approx(1 / 3.0, rel=0.05)
    vae = build_image_vae("tiny").eval()
    vae.load_state_dict(image_vae.state_dict())
    with torch.no_grad():
        sample = vae.encode(pixels_to_model(smooth_images(8, 64, 64, seed=1))).latent_dist.mode()
        vae.register_to_config(scaling_factor=estimate_scaling_factor([sample[:4], sample[4:]]))
        held_out = encode(vae, smooth_images(8, 64, 64, seed=2))
    assert vae.config.scaling_factor == pytest.approx(1 / sample.std().item(), rel=1e-5)
    assert 0.8 < held_out.std().item() < 1.25


def test_perceptual_loss_zero_for_identical_and_grows_with_blur():
    loss_fn = PyramidPerceptualLoss()
    image = textured_image()
    assert loss_fn(image, image).item() == pytest.approx(0.0, abs=1e-6)
    losses = [
        loss_fn(separable_filter(image, gaussian_kernel1d(sigma)), image).item()
        for sigma in (0.5, 1.0, 2.0, 4.0)
    ]
    assert losses[0] > 0.01
    assert all(a < b for a, b in itertools.pairwise(losses)), losses


def test_perceptual_loss_is_differentiable():
    image = textured_image().repeat(2, 1, 1, 1)
    pred = separable_filter(image, gaussian_kernel1d(1.0)).requires_grad_(True)
    PyramidPerceptualLoss()(pred, image).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    frames = textured_image().expand(2, 3, 3, 64, 64)
    assert PyramidPerceptualLoss()(frames, frames.flip(-1)).item() > 0


@torch.no_grad()
def test_save_and_load_pretrained_gives_identical_outputs(tmp_path, video_vae, image_vae):
    video_vae = copy.deepcopy(video_vae)
    video_vae.register_to_config(scaling_factor=0.42)
    video_vae.save_pretrained(tmp_path / "video", safe_serialization=True)
    assert (tmp_path / "video" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = load_video_vae(tmp_path / "video").eval()
    assert isinstance(loaded, AutoencoderKLCogVideoX) and loaded.config.scaling_factor == 0.42
    frames = smooth_images(9, 64, 64).reshape(1, 9, 3, 64, 64)
    torch.testing.assert_close(encode(loaded, frames), encode(video_vae, frames), rtol=0, atol=0)

    image_vae.save_pretrained(tmp_path / "pipeline" / "vae", safe_serialization=True)
    loaded = load_image_vae(tmp_path / "pipeline").eval()  # a pipeline folder holding vae/
    assert isinstance(loaded, AutoencoderKL)
    images = smooth_images(2, 64, 64)
    latents = encode(image_vae, images)
    torch.testing.assert_close(encode(loaded, images), latents, rtol=0, atol=0)
    torch.testing.assert_close(decode(loaded, latents), decode(image_vae, latents), rtol=0, atol=0)

    with pytest.raises(ValueError, match="not an AutoencoderKLCogVideoX"):
        load_video_vae(tmp_path / "pipeline")
    with pytest.raises(FileNotFoundError):
        load_image_vae(tmp_path / "nowhere")
    config = json.loads((tmp_path / "video" / "config.json").read_text())
    assert config["_class_name"] == "AutoencoderKLCogVideoX"
