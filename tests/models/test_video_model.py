"""Camera-guided CogVideoX: exact identity at init, what trains, token alignment, ablations."""

import copy

import pytest
import torch
import torch.nn.functional as F

from models.video import (
    CameraControlConfig,
    CameraEncoder,
    CameraGuidedCogVideoX,
    build_base,
    rotary_embedding,
)

# width 32 (2 heads x 16: the rotary variant needs head dim >= 16), 3 blocks, latent channels 4
TINY_BASE = dict(
    num_attention_heads=2,
    attention_head_dim=16,
    in_channels=8,
    out_channels=4,
    time_embed_dim=32,
    text_embed_dim=16,
    num_layers=3,
    sample_width=6,
    sample_height=8,
    sample_frames=9,
    max_text_seq_length=8,
    use_rotary_positional_embeddings=True,
)
B, C, T, h, w = 2, 4, 3, 8, 6  # 9 frames at 64x48 pixels; 3 x 4 x 3 = 36 video tokens


pytestmark = pytest.mark.usefixtures("one_thread")


def make(seed: int = 0, **control):
    """(model, untouched copy of its base)."""
    torch.manual_seed(seed)
    base = build_base(TINY_BASE)
    reference = copy.deepcopy(base)
    control = {"num_ctrl_blocks": 2, "lora_rank": 4, "camera_channels": [8, 8, 16], **control}
    return CameraGuidedCogVideoX(base, CameraControlConfig(**control)), reference


def inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return dict(
        latents=torch.randn(B, C, T, h, w, generator=g),
        image_latents=torch.randn(B, C, T, h, w, generator=g),
        text_embeds=torch.randn(B, 8, 16, generator=g),
        timestep=torch.tensor([10, 900]),
        plucker=torch.randn(B, 9, 6, 8 * h, 8 * w, generator=g),
    )


def base_output(reference, x) -> torch.Tensor:
    """The untouched diffusers transformer on the same inputs, as ``[B, C, T, h, w]``."""
    hidden = torch.cat([x["latents"], x["image_latents"]], 1).permute(0, 2, 1, 3, 4)
    out = reference(
        hidden_states=hidden,
        encoder_hidden_states=x["text_embeds"],
        timestep=x["timestep"],
        image_rotary_emb=rotary_embedding(reference.config, T, h, w, "cpu"),
        return_dict=False,
    )[0]
    return out.permute(0, 2, 1, 3, 4)


ABLATIONS = {
    "dual": {},
    "ctrl_only": {"mode": "ctrl_only"},
    "lora_only": {"mode": "lora_only"},
    "block-1": {"mode": "ctrl_only", "num_ctrl_blocks": 1},
    "all-blocks": {"mode": "ctrl_only", "num_ctrl_blocks": 3},
    "no-weight-copy": {"mode": "ctrl_only", "with_weight_copy": False},
    "dual-without-lora-module": {"lora_rank": 0},
    "lora-with-ff": {"lora_ff": True},
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_output_at_init_equals_frozen_base_exactly(name):
    model, reference = make(**ABLATIONS[name])
    x = inputs()
    with torch.no_grad():
        out = model(**x)
        expected = base_output(reference, x)
    assert out.shape == (B, C, T, h, w)
    assert torch.equal(out, expected)


def test_ablation_switches_build_the_right_branches():
    dual, _ = make()
    assert len(dual.ctrl_blocks) == 2 and len(dual.ctrl_out) == 2
    assert dual.concat_proj is not None and len(dual.lora.adapters) == 3 * 4  # q, k, v, out
    ctrl, _ = make(mode="ctrl_only", num_ctrl_blocks=1)
    assert len(ctrl.ctrl_blocks) == 1 and ctrl.lora is None and ctrl.concat_proj is None
    assert ctrl.lora_encoder is None
    lora, _ = make(mode="lora_only")
    assert lora.ctrl_blocks is None and lora.ctrl_encoder is None and lora.lora is not None
    no_lora, _ = make(lora_rank=0)
    assert no_lora.lora is None and no_lora.concat_proj is not None
    ff, _ = make(lora_ff=True)
    assert len(ff.lora.adapters) == 3 * 6
    counts = {
        n: sum(p.numel() for p in make(**c)[0].trainable_parameters())
        for n, c in (("dual", {}), ("ctrl", {"mode": "ctrl_only"}), ("lora", {"mode": "lora_only"}))
    }
    assert counts["dual"] == counts["ctrl"] + counts["lora"]  # the two branches share nothing
    with pytest.raises(ValueError, match="mode"):
        CameraControlConfig(mode="both")
    with pytest.raises(ValueError, match="num_ctrl_blocks"):
        make(num_ctrl_blocks=4)


def test_weight_copy_switch():
    copied, _ = make(mode="ctrl_only")
    fresh, _ = make(mode="ctrl_only", with_weight_copy=False)
    for model, same in ((copied, True), (fresh, False)):
        src = model.base.transformer_blocks[1].state_dict()
        dst = model.ctrl_blocks[1].state_dict()
        assert src.keys() == dst.keys()
        equal = [
            torch.equal(src[k], dst[k]) for k in src if k.endswith("weight") and "norm" not in k
        ]
        assert all(equal) if same else not any(equal)


def test_only_camera_parts_receive_gradients():
    model, reference = make()
    x = inputs()
    target = torch.randn(B, C, T, h, w, generator=torch.Generator().manual_seed(5))
    opt = torch.optim.SGD(model.trainable_parameters(), lr=0.05)
    for _ in range(3):  # zero layers need a step before the layers behind them see gradient
        opt.zero_grad()
        F.mse_loss(model(**x), target).backward()
        if _ < 2:
            opt.step()
    groups = {}
    for name, p in model.named_trainable_parameters():
        assert p.requires_grad and p.grad is not None, name
        group = name.split(".")[0]
        groups[group] = groups.get(group, 0.0) + float(p.grad.abs().sum())
    assert set(groups) == {
        "ctrl_encoder",
        "ctrl_blocks",
        "ctrl_out",
        "lora_encoder",
        "concat_proj",
        "lora",
    }
    assert all(v > 0 for v in groups.values()), groups
    ref_state = reference.state_dict()
    for name, p in model.base.named_parameters():
        assert not p.requires_grad and p.grad is None, name
        assert torch.equal(p, ref_state[name]), name  # frozen weights untouched by the steps
    assert set(model.base.state_dict()) == set(ref_state)  # LoRA hooks leave the keys alone


def test_lora_adapters_change_the_output_only_once_trained():
    model, reference = make(mode="lora_only")
    x = inputs()
    with torch.no_grad():
        before = model(**x)
        for lora in model.lora.adapters.values():
            lora.up.weight.normal_(0, 0.1)
        after = model(**x)
        model.lora.detach_hooks()
        detached = model(**x)
    assert not torch.allclose(before, after)
    assert torch.equal(detached, before)  # without hooks: base + identity concat again
    assert torch.equal(base_output(reference, x), before)


def _changed_tokens(fn, clean, marked) -> list[int]:
    with torch.no_grad():
        diff = (fn(marked) - fn(clean)).abs().amax(-1)[0]
    return torch.nonzero(diff > 1e-6).flatten().tolist()


def test_plucker_tokens_align_with_video_tokens():
    """A marker in the pixels of one latent cell changes exactly the camera token that the
    patch embedding gives to that latent cell."""
    torch.manual_seed(0)
    enc = CameraEncoder(out_dim=32, channels=[8, 8, 16], patch_size=2)
    torch.nn.init.normal_(enc.proj.weight)  # the zero linear would hide everything
    base = build_base(TINY_BASE)
    text = torch.zeros(1, 8, 16)

    def video_tokens(lat):  # lat [1, T, 2C, h, w] -> video tokens [1, N, D]
        return base.patch_embed(text, lat)[:, 8:]

    clean_px = torch.randn(1, 9, 6, 8 * h, 8 * w)
    clean_lat = torch.randn(1, T, 8, h, w)
    # latent cell (t, y, x) -> pixel frames of latent frame t (0: frame 0; t: 4t-3 .. 4t)
    for t_lat, frames, y, x in ((2, [5, 8], 5, 2), (0, [0], 0, 5), (1, [1], 7, 0), (1, [4], 3, 3)):
        marked_px = clean_px.clone()
        for f in frames:
            marked_px[0, f, :, 8 * y : 8 * y + 8, 8 * x : 8 * x + 8] += 5.0
        marked_lat = clean_lat.clone()
        marked_lat[0, t_lat, :, y, x] += 5.0
        cam = _changed_tokens(enc, clean_px, marked_px)
        vid = _changed_tokens(video_tokens, clean_lat, marked_lat)
        expected = t_lat * (h // 2) * (w // 2) + (y // 2) * (w // 2) + x // 2
        assert cam == vid == [expected]
    assert enc(clean_px).shape == (1, T * (h // 2) * (w // 2), 32)


def test_mismatched_plucker_is_rejected():
    model, _ = make()
    x = inputs()
    x["plucker"] = x["plucker"][:, :5]  # 5 frames -> 2 latent frames, the latents have 3
    with pytest.raises(ValueError, match="camera tokens"):
        model(**x)
    with pytest.raises(ValueError, match="4k\\+1"):
        CameraEncoder(8, channels=[8, 8, 8])(torch.zeros(1, 8, 6, 32, 32))


def test_gradient_checkpointing_gives_the_same_gradients():
    model, _ = make()
    x = inputs()
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.01)  # move off the zero init so all grads flow
    grads = []
    for flag in (False, True):
        model.gradient_checkpointing = flag
        model.zero_grad()
        model(**x).square().mean().backward()
        grads.append([p.grad.clone() for p in model.trainable_parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
