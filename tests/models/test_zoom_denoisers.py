"""Diffusers ε-models as zoom-sampler denoisers: tiny UNet / PixArt built offline, local loading."""

import json

import pytest
import torch

from models.zoom import (
    DDPMSchedule,
    DiffusersDenoiser,
    JointZoomSampler,
    cross_scale_psnr,
    load_diffusers_denoiser,
)

diffusers = pytest.importorskip("diffusers")


pytestmark = pytest.mark.usefixtures("one_thread")


def _unet():
    torch.manual_seed(0)
    return diffusers.UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=24,
        attention_head_dim=8,
        norm_num_groups=8,
    ).eval()


def _pixart():
    torch.manual_seed(0)
    return diffusers.PixArtTransformer2DModel(
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=8,  # learned-σ head, as PixArt-Σ
        num_layers=1,
        cross_attention_dim=16,
        sample_size=16,
        patch_size=2,
        caption_channels=24,
        norm_num_groups=8,
    ).eval()


@torch.no_grad()
def test_adapters_call_the_models_like_diffusers():
    g = torch.Generator().manual_seed(1)
    z, e = torch.randn(3, 4, 16, 16, generator=g), torch.randn(3, 7, 24, generator=g)
    t = torch.tensor([999, 500, 0])
    unet = _unet()
    torch.testing.assert_close(DiffusersDenoiser(unet)(z, t, e), unet(z, t, e).sample)
    pix = _pixart()
    ref = pix(z, encoder_hidden_states=e, timestep=t,
              added_cond_kwargs={"resolution": None, "aspect_ratio": None}).sample  # fmt: skip
    out = DiffusersDenoiser(pix)(z, t, e)
    assert ref.shape[1] == 8 and out.shape == z.shape
    torch.testing.assert_close(out, ref[:, :4])  # ε half of the learned-σ output
    # a text mask reaches the model: masking tokens changes the output
    mask = torch.ones(3, 7)
    mask[:, 4:] = 0
    assert not torch.allclose(DiffusersDenoiser(pix)(z, t, e, mask), out)
    # v-prediction is converted to ε = α v + σ z
    sched = DDPMSchedule.make("linear")
    v_den = DiffusersDenoiser(pix, "v_prediction", sched.alphas_cumprod)
    a = sched.alphas_cumprod[t].float().sqrt().view(-1, 1, 1, 1)
    torch.testing.assert_close(v_den(z, t, e), a * out + (1 - a**2).sqrt() * z)


def test_load_local_folders_and_sample(tmp_path):
    """A diffusers layout (unet/ + scheduler/) and the stage-I export layout (transformer/ +
    config.json's schedule) load offline and drive the joint sampler."""
    unet_root = tmp_path / "sd"
    _unet().save_pretrained(unet_root / "unet")
    sched = diffusers.DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                    beta_end=0.012)  # fmt: skip
    sched.save_pretrained(unet_root / "scheduler")
    loaded = load_diffusers_denoiser(unet_root)
    torch.testing.assert_close(loaded.schedule.betas, sched.betas.double())
    assert loaded.denoiser.prediction_type == "epsilon"

    prior_root = tmp_path / "stage1"
    _pixart().save_pretrained(prior_root / "transformer")
    schedule = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02,
                "beta_schedule": "linear", "prediction_type": "v_prediction"}  # fmt: skip
    (prior_root / "config.json").write_text(json.dumps({"schedule": schedule}))
    prior = load_diffusers_denoiser(prior_root)
    assert prior.denoiser.prediction_type == "v_prediction"
    torch.testing.assert_close(prior.schedule.betas, torch.linspace(1e-4, 0.02, 1000).double())

    N = 3
    g = torch.Generator().manual_seed(2)
    embeds, uncond = torch.randn(N, 5, 24, generator=g), torch.zeros(1, 5, 24)
    mask, umask = torch.ones(N, 5), torch.ones(1, 5)
    for item, kw in ((loaded, {}), (prior, {"prompt_mask": mask, "uncond_mask": umask})):
        sampler = JointZoomSampler(item.denoiser, item.schedule, N, p=2, num_steps=3)
        out = sampler.sample(embeds, (4, 16, 16), uncond, generator=g, **kw)
        assert out.layers.shape == (N, 4, 16, 16) and torch.isfinite(out.layers).all()
        assert torch.isinf(cross_scale_psnr(out.images, 2)).all()
    with pytest.raises(FileNotFoundError):
        load_diffusers_denoiser(tmp_path)
