"""Stage I (image prior): loss falls, caption dropout, export -> load identical, import-only runs,
the zoom sampler's loader reads the export."""

import pytest
import torch

from models.zoom.denoisers import load_diffusers_denoiser
from training.modules.frame_stage1 import ImagePriorModule

S = 64


pytestmark = pytest.mark.usefixtures("one_thread")


def make(**kw) -> ImagePriorModule:
    torch.manual_seed(0)
    args = {"size": "tiny", "vae": {"size": "tiny"}, "lr": 1e-3, "weight_decay": 0.0}
    return ImagePriorModule(**{**args, **kw})


def image_batch(B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(B, 3, S, S, generator=g), "caption": ["a red room", "a garden"][:B]}


def test_tiny_loss_falls_on_a_fixed_batch():
    module = make(caption_dropout=0.0).train()
    batch = image_batch()
    t, noise = torch.tensor([150, 800]), torch.randn(2, 4, S // 8, S // 8)
    opt = module.configure_optimizers()
    vae = {k: v.clone() for k, v in module.vae.state_dict().items()}
    losses = []
    for _ in range(40):
        loss = module.diffusion_loss(batch, t, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, losses
    assert all(torch.equal(v, module.vae.state_dict()[k]) for k, v in vae.items())
    assert all(p.grad is None for p in module.text_encoder.parameters())


def test_caption_dropout_uses_the_empty_prompt():
    module = make(caption_dropout=0.5).train()
    torch.manual_seed(3)
    captions = module.captions({"caption": ["x"] * 400}, 400)
    dropped = captions.count("")
    assert 150 < dropped < 250 and set(captions) == {"", "x"}
    assert module.eval().captions({"caption": ["x"] * 10}, 10) == ["x"] * 10


def test_export_load_identical_and_readable_by_the_zoom_sampler(tmp_path):
    module = make(prediction_type="v_prediction").eval()
    meta = module.export_pretrained(tmp_path / "export")
    assert meta["prediction_type"] == "v_prediction" and meta["parameters"] > 0
    for name in ("transformer/config.json", "text_encoder/config.json", "vae/config.json"):
        assert (tmp_path / "export" / name).is_file()
    loaded = ImagePriorModule.load(tmp_path / "export")
    assert loaded.schedule.prediction_type == "v_prediction"
    prompts = ["a hall", ""]
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([10, 700])
    with torch.no_grad():
        e1, m1 = module.text_encoder.encode(prompts)
        e2, m2 = loaded.text_encoder.encode(prompts)
        assert torch.equal(e1, e2) and torch.equal(m1, m2)
        expected = module.prior.predict_eps(x, t, e1, m1)
        assert torch.equal(loaded.prior.predict_eps(x, t, e2, m2), expected)
        images = loaded.sample(["a hall"], steps=2, guidance_scale=2.0)
        assert images.shape == (1, 3, S, S)
        assert torch.equal(images, module.sample(["a hall"], steps=2, guidance_scale=2.0))
    # the zoom stack's loader: same ε (it converts v to ε with the exported schedule)
    zoom = load_diffusers_denoiser(tmp_path / "export")
    with torch.no_grad():
        torch.testing.assert_close(zoom.denoiser(x, t, e1, m1), expected, atol=1e-5, rtol=1e-5)


def test_pretrained_import_reuses_the_exported_components(tmp_path):
    module = make().eval()
    module.export_pretrained(tmp_path / "prior")
    imported = ImagePriorModule(pretrained=str(tmp_path / "prior"), max_length=32)
    assert imported.text_encoder.max_length == 32
    for a, b in zip(module.prior.parameters(), imported.prior.parameters()):
        assert torch.equal(a, b)
    assert imported._sources["vae"] and imported._sources["text_encoder"]
    with pytest.raises(ValueError, match="caption_channels"):
        make(text_encoder={"d_model": 16, "num_layers": 1, "num_heads": 2, "d_ff": 32})
    with pytest.raises(ValueError, match="T5 folder"):
        ImagePriorModule(size="paper", vae={"size": "tiny"})
