"""Stage-I image prior: the ε / v interface, classifier-free guidance, prompt masks, sampling."""

import pytest
import torch

from models.autoencoders import build_image_vae
from models.frame import (
    DiffusionSchedule,
    ImagePrior,
    PromptEncoder,
    build_pixart,
    pixart_config,
    sample_images,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def make(kind="epsilon", out_channels=4):
    torch.manual_seed(0)
    prior = ImagePrior(
        build_pixart("tiny", out_channels=out_channels), DiffusionSchedule(prediction_type=kind)
    )
    return prior.eval(), PromptEncoder.tiny(max_length=16)


def test_paper_config_is_pixart_sigma_xl2():
    c = pixart_config("paper")
    assert (c["num_layers"], c["num_attention_heads"], c["attention_head_dim"]) == (28, 16, 72)
    assert c["num_attention_heads"] * c["attention_head_dim"] == 1152
    assert (c["patch_size"], c["sample_size"], c["caption_channels"], c["out_channels"]) == (
        2,
        64,
        4096,
        8,
    )


def test_prompt_encoder_returns_masks():
    _, text = make()
    embeds, mask = text.encode(["", "a long corridor"])
    assert embeds.shape == (2, 16, 32) and mask.shape == (2, 16)
    assert int(mask[0].sum()) == 1 and int(mask[1].sum()) == 16  # "" = EOS only; 15 bytes + EOS


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
def test_predict_eps_and_cfg(kind):
    prior, text = make(kind, out_channels=8)  # learned-σ head: only the first C channels are used
    cond, uncond = text.encode(["a red room", "a blue sky"]), text.encode([""])
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([100, 900])
    with torch.no_grad():
        raw = prior(x, t, *cond)
        assert raw.shape == (2, 4, 8, 8)
        eps = prior.predict_eps(x, t, *cond)
        torch.testing.assert_close(eps, prior.schedule.to_eps(x, raw, t))
        if kind == "epsilon":
            assert torch.equal(eps, raw)
        eps_u = prior.predict_eps(x, t, uncond[0].expand(2, -1, -1), uncond[1].expand(2, -1))
        guided = prior.guided_eps(x, t, cond, uncond, 4.5)
        torch.testing.assert_close(guided, eps_u + 4.5 * (eps - eps_u), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(prior.guided_eps(x, t, cond, uncond, 1.0), eps)


def test_sample_images_shape_and_seed():
    prior, text = make()
    vae = build_image_vae("tiny").eval()
    a = sample_images(prior, text, vae, ["a hall"], 64, 64, steps=2, guidance_scale=3.0, seed=1)
    b = sample_images(prior, text, vae, ["a hall"], 64, 64, steps=2, guidance_scale=3.0, seed=1)
    c = sample_images(prior, text, vae, ["a hall"], 64, 64, steps=2, guidance_scale=3.0, seed=2)
    assert a.shape == (1, 3, 64, 64) and torch.equal(a, b) and not torch.equal(a, c)
    assert 0 <= float(a.min()) and float(a.max()) <= 1
