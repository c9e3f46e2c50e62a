"""FrameDiT: width concat/split, shared patch embedding, positions, camera encodings, exact anchor
masking, reference-token caching, PixArt weight loading, save/load."""

import pytest
import torch
from diffusers import PixArtTransformer2DModel
from diffusers.models.embeddings import get_1d_sincos_pos_embed_from_grid, get_2d_sincos_pos_embed

from models.frame import (
    CAMERA_ENCODINGS,
    FrameCondition,
    FrameDiT,
    build_pixart,
    concat_width,
    frame_config_from_pixart,
    frame_pos_embed,
    load_image_prior_weights,
    split_width,
)
from models.frame.dit import AttentionContext
from models.geometry import K_from_fov, look_at, random_rotation

C, h, w, IMG = 4, 8, 8, 64
TINY = {"num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 32, "sample_size": 8}


pytestmark = pytest.mark.usefixtures("one_thread")


def make_dit(camera_encoding="prope", seed=0, **kw) -> FrameDiT:
    torch.manual_seed(seed)
    dit = FrameDiT(**{**TINY, "camera_encoding": camera_encoding, **kw}).eval()
    with torch.no_grad():  # zero-initialised camera MLPs would hide the camera path
        for p in dit.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)
    return dit


def condition(B=2, seed=0, masked=None) -> FrameCondition:
    g = torch.Generator().manual_seed(seed)
    K = K_from_fov(60.0, IMG, IMG).expand(B, 3, 3).clone()
    eye = torch.randn(B, 2, 3, generator=g)
    c2w = look_at(
        eye.flatten(0, 1), torch.zeros(2 * B, 3), torch.tensor([0.0, -1, 0]).expand(2 * B, 3)
    )
    c2w = c2w.view(B, 2, 4, 4).float()
    return FrameCondition(
        anchor=torch.randn(B, C, h, w, generator=g),
        reference=torch.randn(B, C, h, w, generator=g),
        target_K=K,
        target_c2w=c2w[:, 0],
        reference_K=K,
        reference_c2w=c2w[:, 1],
        anchor_masked=masked,
    )


def run(dit, cond, seed=0, **kw):
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(cond.batch_size, C, h, w, generator=g)
    t = torch.tensor([999, 200, 20, 500][: cond.batch_size])
    with torch.no_grad():
        return dit(x, t, cond, **kw)


def test_width_concat_and_split_shapes():
    parts = [torch.randn(2, C, h, 6) for _ in range(3)]
    cat = concat_width(*parts)
    assert cat.shape == (2, C, h, 18)
    back = split_width(cat, 3)
    assert len(back) == 3 and all(torch.equal(a, b) for a, b in zip(back, parts))
    with pytest.raises(ValueError, match="share a shape"):
        concat_width(parts[0], torch.randn(2, C, h, 4))
    with pytest.raises(ValueError, match="divisible"):
        split_width(torch.randn(1, C, h, 10), 3)


def test_shared_patch_embedding_equals_embedding_the_concatenated_latents():
    dit = make_dit()
    a, b, c = (torch.randn(2, C, h, w) for _ in range(3))
    proj = dit.pos_embed.proj
    with torch.no_grad():
        whole = proj(concat_width(a, b, c))  # [B, D, h/2, 3w/2]
        parts = torch.cat([proj(a), proj(b), proj(c)], dim=-1)
    assert whole.shape == (2, dit.inner_dim, h // 2, 3 * w // 2)
    torch.testing.assert_close(whole, parts, atol=1e-6, rtol=0)


@pytest.mark.parametrize("enc", CAMERA_ENCODINGS)
def test_forward_keeps_the_target_part(enc):
    dit = make_dit(enc)
    out = run(dit, condition(B=3))
    assert out.shape == (3, C, h, w) and torch.isfinite(out).all()
    # learned-sigma head (PixArt-Σ's 2C outputs): the forward returns the C prediction channels
    sigma = make_dit(enc, out_channels=2 * C)
    assert run(sigma, condition(B=3)).shape == (3, C, h, w)


def test_target_positions_are_pixart_positions_and_the_grid_continues_right():
    dit = make_dit()
    hp, wp, base = h // 2, w // 2, TINY["sample_size"] // 2
    pos = frame_pos_embed(dit.inner_dim, hp, wp, 3, base, 1.0).view(hp, 3 * wp, -1)
    pixart = get_2d_sincos_pos_embed(dit.inner_dim, (hp, wp), base_size=base).view(hp, wp, -1)
    torch.testing.assert_close(pos[:, :wp], pixart.float(), atol=1e-6, rtol=0)
    # anchor and reference continue the column coordinate x = wp .. 3wp - 1 on the same scale
    cols = torch.arange(3 * wp, dtype=torch.float64) / (wp / base)
    col_code = get_1d_sincos_pos_embed_from_grid(dit.inner_dim // 2, cols, output_type="pt")
    torch.testing.assert_close(pos[0, :, : dit.inner_dim // 2], col_code.float(), atol=1e-6, rtol=0)
    assert not torch.allclose(pos[:, wp : 2 * wp], pos[:, :wp])  # the parts are told apart


@pytest.mark.parametrize("enc", CAMERA_ENCODINGS)
def test_masked_anchor_gives_exactly_zero_anchor_signal(enc):
    dit = make_dit(enc)
    masked = torch.tensor([True, False])
    cond = condition(masked=masked)
    out = run(dit, cond)
    other = condition(masked=masked)
    other.anchor = torch.randn_like(cond.anchor) * 10  # different anchor content everywhere
    out2 = run(dit, other)
    assert torch.equal(out[0], out2[0])  # masked sample: bit-identical
    assert (out[1] - out2[1]).abs().max() > 1e-4  # unmasked sample sees its anchor
    # the masked sample equals a run where that anchor latent is already zero
    zeroed = condition(masked=masked)
    zeroed.anchor = zeroed.anchor.clone()
    zeroed.anchor[0] = 0
    assert torch.equal(run(dit, zeroed)[0], out[0])


def test_masked_anchor_tokens_are_removed_from_attention_keys():
    dit = make_dit()
    cond = condition(masked=torch.tensor([True, False]))
    ctx = dit._context(cond, h // 2, w // 2)
    hp, wp = h // 2, w // 2
    view = (torch.arange(3 * wp).repeat(hp)) // wp
    assert ctx.mask.shape == (2, 1, 1, hp * 3 * wp)
    assert not ctx.mask[0, 0, 0, view == 1].any() and ctx.mask[0, 0, 0, view != 1].all()
    assert ctx.mask[1].all()
    assert dit._context(condition(), hp, wp).mask is None


@pytest.mark.parametrize("enc", ["prope", "plucker", "parametric"])
def test_cached_reference_tokens_give_the_same_output(enc):
    dit = make_dit(enc)
    cond = condition()
    tokens = dit.embed_reference(cond.index(slice(0, 1)))
    one = cond.index(slice(0, 1))
    torch.testing.assert_close(
        run(dit, one, reference_tokens=tokens), run(dit, one), atol=1e-6, rtol=0
    )


def test_prope_model_is_invariant_to_the_world_frame_and_plucker_is_not():
    cond = condition(B=2, seed=3)
    G = torch.eye(4)
    G[:3, :3] = random_rotation(generator=torch.Generator().manual_seed(5))
    G[:3, 3] = torch.tensor([1.0, -2.0, 0.5])
    moved = condition(B=2, seed=3)
    moved.target_c2w, moved.reference_c2w = G @ cond.target_c2w, G @ cond.reference_c2w
    prope = make_dit("prope")
    torch.testing.assert_close(run(prope, moved), run(prope, cond), atol=2e-4, rtol=1e-4)
    plucker = make_dit("plucker")
    assert (run(plucker, moved) - run(plucker, cond)).abs().max() > 1e-3
    # and PRoPE does see the relative pose
    rel = condition(B=2, seed=3)
    rel.reference_c2w = G @ cond.reference_c2w
    assert (run(prope, rel) - run(prope, cond)).abs().max() > 1e-3


def test_block_matches_pixart_block_without_cross_attention():
    torch.manual_seed(0)
    pixart = build_pixart("tiny", out_channels=8).eval()
    dit = FrameDiT(**frame_config_from_pixart(pixart.config, camera_encoding="none")).eval()
    report = load_image_prior_weights(dit, pixart.state_dict())
    assert not report["mismatched"] and report["missing"] == []
    assert any(k.startswith("caption_projection") for k in report["skipped"])
    assert all(".attn2." in k or k.startswith("caption_projection") for k in report["skipped"])
    block, ref = dit.transformer_blocks[0], pixart.transformer_blocks[0]
    with torch.no_grad():
        ref.attn2.to_out[0].weight.zero_()
        ref.attn2.to_out[0].bias.zero_()
        x = torch.randn(2, 10, dit.inner_dim)
        t = torch.tensor([10, 900])
        t_mod, _ = dit.adaln_single(t, None, batch_size=2, hidden_dtype=x.dtype)
        t_ref, _ = pixart.adaln_single(t, {"resolution": None, "aspect_ratio": None}, 2, x.dtype)
        torch.testing.assert_close(t_mod, t_ref)
        got = block(x, t_mod, AttentionContext())
        expected = ref(x, timestep=t_ref, encoder_hidden_states=torch.randn(2, 3, dit.inner_dim))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # the learned-sigma head gives its ε rows: proj_out rows of channel c < C are copied
    p, Cs = 2, 8
    src = pixart.proj_out.weight.view(p, p, Cs, -1)[:, :, :C].reshape(-1, dit.inner_dim)
    assert torch.equal(dit.proj_out.weight, src)


def test_save_and_load_roundtrip(tmp_path):
    dit = make_dit("plucker")
    dit.save_pretrained(tmp_path / "dit")
    loaded = FrameDiT.from_pretrained(str(tmp_path / "dit"), local_files_only=True).eval()
    assert loaded.config.camera_encoding == "plucker"
    cond = condition()
    assert torch.equal(run(loaded, cond), run(dit, cond))


def test_gradient_checkpointing_keeps_values_and_gradients():
    dit = make_dit().train()
    cond = condition()
    x = torch.randn(2, C, h, w)
    t = torch.tensor([10, 900])
    out = dit(x, t, cond)
    out.square().mean().backward()
    grad = dit.transformer_blocks[0].attn1.to_q.weight.grad.clone()
    dit.zero_grad()
    dit.enable_gradient_checkpointing()
    out2 = dit(x, t, cond)
    out2.square().mean().backward()
    torch.testing.assert_close(out2, out)
    torch.testing.assert_close(dit.transformer_blocks[0].attn1.to_q.weight.grad, grad)


def test_rejects_unknown_camera_encoding():
    with pytest.raises(ValueError, match="camera_encoding"):
        FrameDiT(**TINY, camera_encoding="euler")
    assert isinstance(build_pixart("tiny"), PixArtTransformer2DModel)
