"""Causal conditions (``condition_attention="causal"``): the block-causal layout matches a one-pass
reference implementation, cached keys/values reproduce the uncached forward, the conditions never
see the target, masking and PRoPE invariance still hold, the model learns, and the pipeline uses
the caches (reference once per scene, anchor once per frame)."""

import pytest
import torch
import torch.nn.functional as F

from models.frame import DiffusionSchedule, FrameCondition, FrameDiT, FramePipeline
from models.frame.prope import prope_output, prope_qkv
from models.geometry import random_rotation
from tests.models.test_frame_dit import C, condition, h, make_dit, run, w
from tests.models.test_frame_pipeline import CountingVAE, cloud, path

pytestmark = pytest.mark.usefixtures("one_thread")


def causal(enc="prope", **kw) -> FrameDiT:
    return make_dit(enc, condition_attention="causal", **kw)


def one_pass(dit: FrameDiT, x: torch.Tensor, t: torch.Tensor, cond: FrameCondition):
    """All three views in one sequence with an explicit block-causal mask and per-view
    modulation (t for the target, 0 for the conditions) — the layout written out directly."""
    B = x.shape[0]
    views = [
        dit.embed_view(x, 0, cond.target_K, cond.target_c2w),
        dit.embed_view(cond.anchor, 1, cond.target_K, cond.target_c2w),
        dit.embed_reference(cond),
    ]
    hp, wp = views[0].shape[-2:]
    n = hp * wp
    seq = torch.cat([v.flatten(2).transpose(1, 2) for v in views], 1)  # [B, 3n, D]
    t_mod, t_emb = dit.adaln_single(t, None, batch_size=B, hidden_dtype=seq.dtype)
    t0 = dit._clean_modulation(B, seq.device, seq.dtype)
    view = torch.arange(3).repeat_interleave(n)
    allowed = torch.tensor([[1, 1, 1], [0, 1, 1], [0, 0, 1]], dtype=torch.bool)  # query→key view
    mask = allowed[view][:, view][None, None]
    geos = [
        dit._view_geometry(cond.target_K, cond.target_c2w, hp, wp),
        dit._view_geometry(cond.target_K, cond.target_c2w, hp, wp),
        dit._view_geometry(cond.reference_K, cond.reference_c2w, hp, wp),
    ]
    P = torch.cat([g.P for g in geos], 1)
    P_inv = torch.cat([g.P_inv for g in geos], 1)
    rope = tuple(torch.cat([c] * 3, 0) for c in geos[0].rope)
    for block in dit.transformer_blocks:
        mods_t, mods_0 = block.modulation(t_mod), block.modulation(t0)
        per_token = [
            torch.cat([a.expand(B, n, -1), b.expand(B, 2 * n, -1)], 1)
            for a, b in zip(mods_t, mods_0)
        ]
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = per_token
        a = block.attn1
        hdn = block.norm1(seq) * (1 + scale_msa) + shift_msa

        def heads(z, a=a):
            return z.view(B, 3 * n, a.heads, a.head_dim).transpose(1, 2)

        q, k, v = heads(a.to_q(hdn)), heads(a.to_k(hdn)), heads(a.to_v(hdn))
        q, k, v = prope_qkv(q, k, v, P, P_inv, rope)
        o = prope_output(F.scaled_dot_product_attention(q, k, v, attn_mask=mask), P, rope)
        o = o.transpose(1, 2).reshape(B, 3 * n, -1)
        seq = seq + gate_msa * a.to_out[0](o)
        seq = seq + gate_mlp * block.ff(block.norm2(seq) * (1 + scale_mlp) + shift_mlp)
    return dit._final(seq[:, :n], t_emb, hp, wp, C)


def test_layout_matches_a_one_pass_block_causal_attention():
    dit, cond = causal(), condition(B=2)
    x = torch.randn(2, C, h, w, generator=torch.Generator().manual_seed(5))
    t = torch.tensor([999, 200])
    with torch.no_grad():
        torch.testing.assert_close(dit(x, t, cond), one_pass(dit, x, t, cond), atol=2e-5, rtol=0)


@pytest.mark.parametrize("enc", ["prope", "plucker", "none"])
def test_cached_keys_values_reproduce_the_uncached_forward(enc):
    dit, cond = causal(enc), condition(B=2)
    with torch.no_grad():
        cache = dit.condition_cache(cond)
        tokens = dit.embed_reference(cond)
    full = run(dit, cond)
    torch.testing.assert_close(run(dit, cond, cache=cache), full, atol=1e-6, rtol=0)
    torch.testing.assert_close(run(dit, cond, reference_tokens=tokens), full, atol=1e-6, rtol=0)
    assert len(cache.reference) == len(cache.anchor) == dit.config.num_layers
    assert cache.reference[0][0].shape == (2, 2, h * w // 4, 32)  # [B, heads, n, head_dim]


def test_conditions_never_see_the_target_and_the_reference_never_sees_the_anchor():
    dit, cond = causal(), condition(B=1)
    other = condition(B=1, seed=3)
    with torch.no_grad():
        ref = dit.reference_kv(cond)
        moved = FrameCondition(
            other.anchor, cond.reference, other.target_K, other.target_c2w,
            cond.reference_K, cond.reference_c2w,
        )  # fmt: skip
        assert all(torch.equal(a[0], b[0]) for a, b in zip(ref, dit.reference_kv(moved)))
        anchor = dit.anchor_kv(cond, ref)
    # a different target sample changes the output but never the cached conditions
    assert (run(dit, cond, seed=1) - run(dit, cond, seed=2)).abs().max() > 1e-3
    with torch.no_grad():
        again = dit.anchor_kv(cond, ref)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(anchor, again))


def test_masked_anchor_gives_exactly_zero_anchor_signal():
    dit = causal()
    masked = torch.tensor([True, False])
    a, b = condition(B=2, masked=masked), condition(B=2, seed=7, masked=masked)
    b = FrameCondition(
        b.anchor, a.reference, a.target_K, a.target_c2w, a.reference_K, a.reference_c2w, masked
    )
    out_a, out_b = run(dit, a), run(dit, b)
    assert torch.equal(out_a[0], out_b[0])  # masked: anchor content does not matter
    assert (out_a[1] - out_b[1]).abs().max() > 1e-4  # unmasked: it does


def test_prope_causal_model_is_invariant_to_the_world_frame():
    dit, cond = causal(), condition(B=2)
    T = torch.eye(4)
    T[:3, :3] = random_rotation(1, generator=torch.Generator().manual_seed(1))[0]
    T[:3, 3] = torch.tensor([0.3, -1.0, 2.0])
    moved = FrameCondition(
        cond.anchor, cond.reference, cond.target_K, T @ cond.target_c2w,
        cond.reference_K, T @ cond.reference_c2w,
    )  # fmt: skip
    torch.testing.assert_close(run(dit, moved), run(dit, cond), atol=2e-5, rtol=0)


def test_gradient_checkpointing_keeps_values_and_gradients():
    dit, cond = causal(), condition(B=2)
    dit.train()
    x = torch.randn(2, C, h, w, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([999, 20])
    grads = []
    for flag in (False, True):
        dit.gradient_checkpointing = flag
        dit.zero_grad()
        out = dit(x, t, cond)
        out.square().mean().backward()
        grads.append((out.detach(), dit.transformer_blocks[0].attn1.to_k.weight.grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])
    assert grads[0][1].abs().sum() > 0  # the conditions' keys are trained too


def test_causal_model_learns_a_fixed_batch():
    dit, cond = causal(), condition(B=2)
    dit.train()
    schedule = DiffusionSchedule()
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, C, h, w, generator=g), torch.randn(2, C, h, w, generator=g)
    t = torch.tensor([700, 300])
    xt = schedule.add_noise(x0, noise, t)
    opt = torch.optim.Adam(dit.parameters(), lr=1e-3)
    losses = []
    for _ in range(40):
        loss = (dit(xt, t, cond) - noise).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::8]


def test_pipeline_caches_the_reference_once_and_the_anchor_per_frame():
    from models.autoencoders import build_image_vae

    torch.manual_seed(0)
    dit = FrameDiT(
        num_layers=1, num_attention_heads=2, attention_head_dim=32, sample_size=8,
        condition_attention="causal",
    )  # fmt: skip
    pipe = FramePipeline(dit, CountingVAE(build_image_vae("tiny")), DiffusionSchedule())
    Ks, c2ws = path(3)
    pts, cols = cloud()
    pipe.set_scene(torch.rand(3, 64, 64), Ks[0], c2ws[0], pts, cols)
    calls = {"reference_kv": 0, "anchor_kv": 0, "target": 0}
    for name in ("reference_kv", "anchor_kv"):
        orig = getattr(dit, name)
        setattr(
            dit,
            name,
            lambda *a, _o=orig, _n=name, **k: calls.__setitem__(_n, calls[_n] + 1) or _o(*a, **k),
        )
    orig_forward = dit.forward

    def counted(x, t, cond, **kw):
        assert "cache" in kw and kw["cache"].anchor is not None
        calls["target"] += 1
        return orig_forward(x, t, cond, **kw)

    dit.forward = counted
    frames = pipe.render_path(Ks, c2ws)
    assert frames.shape == (3, 3, 64, 64)
    assert calls == {"reference_kv": 0, "anchor_kv": 3, "target": 6}  # 3 frames × 2 steps
    # the cached frame equals sampling with the uncached forward
    dit.forward = orig_forward
    s = pipe._scene
    anchor = pipe.render_anchor(Ks[1], c2ws[1])
    from models.autoencoders import decode, encode

    a_lat = encode(pipe.vae, anchor[None])
    cond = FrameCondition(
        a_lat, s["reference"], Ks[1][None], c2ws[1][None], s["reference_K"], s["reference_c2w"]
    )
    with torch.no_grad():
        latent = pipe.sampler.sample(dit, s["noise"], cond)
        expected = decode(pipe.vae, latent)[0].float()
    torch.testing.assert_close(frames[1], expected, atol=1e-5, rtol=0)
