"""Joint multi-scale sampling (Powers of Ten Alg. 2), its ablations and photograph-based zoom, with
an analytic denoiser (exact ε for a Gaussian prior around each level's target).

Measured by `benchmarks/zoom_stack.py` (results/zoom_consistency.json; N=4 levels, 3×32×32, p=2,
50 DDPM steps, CFG w=2, prior std 0.3, seeds 0-3): cross-scale PSNR between D_1(x̂_{i+1}) and
the centre of x̂_i, of the chains' final clean estimates before blending, mean over level pairs
(range over seeds), dB:

    zoom-consistent prompts   joint 52.1-52.3   iterative 52.1-52.3   independent 22.8-23.0
    disagreeing prompts       joint 51.6-51.9   iterative 51.6-51.9   independent  8.0-9.9

(joint with independent noise: 44.9-45.1). The rendered outputs of every stack-based mode agree
exactly (inf dB). The overlap PSNR of joint/iterative/naive is set by the last step's noise, which
they share; what separates them is the layer boundary — seam ratio with disagreeing prompts
(1 = invisible): joint 1.54-1.65, iterative 2.97-3.55, naive averaging 2.81-2.93 — and blur:
naive averaging keeps 14 % of joint's high-pass energy (paper Fig. 10).
"""

import pytest
import torch

from models.zoom import (
    DDPMSchedule,
    JointZoomSampler,
    PhotoGuidance,
    centre_mask,
    cross_scale_psnr,
    downsample_k,
    footprint,
    render_images,
    seam_ratio,
)
from models.zoom.toy import GaussianPriorDenoiser, prior_embeds, toy_targets

N, C, S, P = 4, 3, 32, 2


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def toy():
    sched = DDPMSchedule.make("linear")
    g = torch.Generator().manual_seed(0)
    consistent = toy_targets(N, C, S, P, generator=g)
    disagreeing = torch.cat([toy_targets(1, C, S, P, generator=g) for _ in range(N)])
    uncond = prior_embeds(torch.zeros(1, C, S, S), 1.0)
    return sched, GaussianPriorDenoiser(sched), consistent, disagreeing, uncond


def _sample(toy, targets, mode, seed=1, profile=False, **kw):
    sched, den, *_, uncond = toy
    sampler = JointZoomSampler(den, sched, N, P, mode=mode, num_steps=50, guidance_scale=2.0, **kw)
    gen = torch.Generator().manual_seed(seed)
    embeds = prior_embeds(targets, 0.3)
    return sampler.sample(embeds, (C, S, S), uncond, generator=gen, profile=profile)


def _highpass(x):
    return (x - torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)).square().mean()


def test_ddpm_step_keeps_the_marginals():
    """z_t ~ q(z_t | x), z_s ~ q(z_s | z_t, x) => z_s ~ q(z_s | x) = N(α_s x, σ_s² I)."""
    sched = DDPMSchedule.make("scaled_linear", beta_start=0.00085, beta_end=0.012)
    ts = sched.timesteps(25)
    assert ts[0] == 999 and ts[-1] == 0 and (ts.diff() < 0).all()
    g = torch.Generator().manual_seed(0)
    x = torch.full((200_000,), 0.7, dtype=torch.float64)
    t, s = 600, 560
    a_t, s_t = sched.alpha_sigma(t)
    z_t = a_t * x + s_t * torch.randn(x.shape, generator=g, dtype=torch.float64)
    z_s = sched.step(z_t, x, t, s, torch.randn(x.shape, generator=g, dtype=torch.float64))
    a_s, s_s = sched.alpha_sigma(s)
    assert z_s.mean().item() == pytest.approx(a_s * 0.7, abs=4 * s_s / 200_000**0.5)
    assert z_s.std().item() == pytest.approx(s_s, rel=0.01)
    torch.testing.assert_close(sched.step(z_t, x, 0, -1, None), x)  # last step lands on x


def test_joint_sampling_is_cross_scale_consistent_and_independent_is_not(toy):
    _, _, consistent, disagreeing, _ = toy
    for targets in (consistent, disagreeing):
        joint = _sample(toy, targets, "joint")
        indep = _sample(toy, targets, "independent")
        assert cross_scale_psnr(joint.samples, P).min() > 45  # the chains themselves agree
        assert torch.isinf(cross_scale_psnr(joint.images, P)).all()  # the stack's renders
        assert cross_scale_psnr(indep.samples, P).max() < 25
        assert torch.equal(indep.images, indep.samples)
    # joint sampling follows the prompts about as well as independent sampling does
    fidelity = lambda out: (out.images - consistent).square().mean()  # noqa: E731
    joint, indep = _sample(toy, consistent, "joint"), _sample(toy, consistent, "independent")
    assert fidelity(joint) < 1.5 * fidelity(indep)


def test_iterative_and_naive_ablations_show_seams_and_blur(toy):
    """Disagreeing prompts: the iterative update and naive averaging leave a visible layer
    boundary that joint Laplacian blending does not; naive averaging also blurs."""
    _, _, consistent, disagreeing, _ = toy
    joint = _sample(toy, disagreeing, "joint")
    iterative = _sample(toy, disagreeing, "iterative")
    naive = _sample(toy, disagreeing, "naive_average")
    seam = {k: seam_ratio(v.images, P)[:-1].mean() for k, v in
            [("joint", joint), ("iterative", iterative), ("naive", naive)]}  # fmt: skip
    assert seam["joint"] < 2.0 < seam["iterative"] and seam["joint"] < 0.75 * seam["naive"]
    assert cross_scale_psnr(iterative.samples, P).min() > 45
    joint_c, naive_c = _sample(toy, consistent, "joint"), _sample(toy, consistent, "naive_average")
    assert _highpass(naive_c.images) < 0.3 * _highpass(joint_c.images)


def test_one_batched_denoiser_call_per_step(toy):
    sched, den, consistent, _, uncond = toy
    calls = []

    def counting(z, t, e):
        calls.append((z.shape[0], t.unique().tolist()))
        return den(z, t, e)

    cond = prior_embeds(consistent, 0.3)
    gen = torch.Generator().manual_seed(0)
    out = JointZoomSampler(counting, sched, N, P, num_steps=7).sample(cond, (C, S, S), uncond)
    assert out.nfe == len(calls) == 7 and all(b == 2 * N and len(t) == 1 for b, t in calls)
    calls.clear()
    JointZoomSampler(counting, sched, N, P, num_steps=7, guidance_scale=1.0).sample(
        cond, (C, S, S), uncond, generator=gen
    )
    assert all(b == N for b, _ in calls)  # no CFG: conditional half only
    calls.clear()
    out = JointZoomSampler(counting, sched, N, P, mode="iterative", num_steps=3).sample(
        cond, (C, S, S), uncond, generator=gen
    )
    assert out.nfe == len(calls) == 3 * N and all(b == 2 for b, _ in calls)


def test_independent_noise_ablation_and_switch_validation(toy):
    _, _, consistent, _, _ = toy
    shared = _sample(toy, consistent, "joint")
    indep_noise = _sample(toy, consistent, "joint", noise="independent")
    assert not torch.allclose(shared.layers, indep_noise.layers)
    assert torch.isinf(cross_scale_psnr(indep_noise.images, P)).all()
    with pytest.raises(ValueError):
        JointZoomSampler(lambda *a: a[0], toy[0], N, P, mode="bogus")
    with pytest.raises(ValueError):
        JointZoomSampler(lambda *a: a[0], toy[0], N, P, noise="bogus")


def test_photo_loss_is_equation_1():
    """The crop form equals Σ_i ‖D_i(x̂_i) − M_i ⊙ ξ‖² with D_i zero-padded to H × W."""
    g = torch.Generator().manual_seed(4)
    x_hat, photo = torch.randn(N, C, S, S, generator=g), torch.randn(C, S, S, generator=g)
    guide = PhotoGuidance(photo)
    assert (guide.steps, guide.lr, guide.level) == (5, 0.1, 0)
    ref = 0.0
    for i in range(N):
        (o, s), M = footprint(S, P, i), centre_mask(S, S, P, i)
        padded = torch.zeros(C, S, S)
        padded[:, o : o + s, o : o + s] = downsample_k(x_hat[i], P, i)
        ref += (padded - M * photo).square().sum()
    assert guide.loss(x_hat, list(range(N)), P).item() == pytest.approx(ref.item(), rel=1e-5)
    fitted = guide.fit(x_hat, None, P)
    assert guide.loss(fitted, list(range(N)), P) < 0.8 * ref


def test_photograph_based_zoom_follows_the_photo(toy):
    """Broad prompts (prior std 1 around 0) + a photo at level 0: the zoomed-out level
    reproduces the photo and the deeper levels agree with its centre."""
    sched, den, consistent, _, uncond = toy
    photo = consistent[0]
    cond = prior_embeds(torch.zeros(N, C, S, S), 1.0)
    for guide in (None, PhotoGuidance(photo)):
        sampler = JointZoomSampler(den, sched, N, P, num_steps=50, guidance_scale=1.0, photo=guide)
        out = sampler.sample(cond, (C, S, S), uncond, generator=torch.Generator().manual_seed(5))
        err = (out.images[0] - photo).square().mean().item()
        if guide is None:
            assert err > 0.1
        else:
            assert err < 0.01
            psnr = cross_scale_psnr(torch.stack([photo, out.images[1]]), P)
            assert psnr.item() > 20


def test_rendered_initial_noise_and_layers_are_a_stack(toy):
    out = _sample(toy, toy[2], "joint", seed=7)
    torch.testing.assert_close(render_images(out.layers, P), out.images)
    assert out.layers.shape == (N, C, S, S) and torch.isfinite(out.layers).all()


@pytest.mark.slow
@pytest.mark.parametrize("mode", [True, "cudagraphs"])
def test_compiled_consolidation_matches_eager(toy, mode):
    """``compile_consolidation`` (torch.compile of blending, re-rendering and noise rendering)
    changes speed only: the same layers up to float rounding, still cross-scale consistent. On
    the CPU ``"cudagraphs"`` compiles without graphs but runs the same step-marking and copy-out
    path (the GPU test below replays real graphs)."""
    _, _, consistent, _, _ = toy
    eager = _sample(toy, consistent, "joint")
    compiled = _sample(toy, consistent, "joint", compile_consolidation=mode)
    scale = eager.layers.abs().max()
    assert (compiled.layers - eager.layers).abs().max() < 1e-4 * scale
    assert torch.isinf(cross_scale_psnr(compiled.images, P)).all()


def test_profile_splits_the_step_time_and_compile_modes_are_checked(toy):
    out = _sample(toy, toy[2], "joint", profile=True)
    assert set(out.timings) == {"denoiser", "photo", "blend_render", "noise", "update"}
    assert all(v >= 0 for v in out.timings.values()) and out.timings["blend_render"] > 0
    sched, den, *_ = toy
    with pytest.raises(ValueError, match="compile_consolidation must be one of"):
        JointZoomSampler(den, sched, N, P, compile_consolidation="max-autotune")


@pytest.mark.gpu
def test_cuda_graph_consolidation_matches_eager(toy):
    """``compile_consolidation="cudagraphs"``: same layers as eager on the GPU (graph buffers are
    copied out, so the noise that becomes the state is not overwritten by the next replay)."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    sched, den, consistent, _, uncond = toy
    outs = {}
    for mode in (False, "cudagraphs"):
        sampler = JointZoomSampler(den, sched, N, P, num_steps=50, guidance_scale=2.0,
                                   compile_consolidation=mode)  # fmt: skip
        gen = torch.Generator("cuda").manual_seed(3)
        embeds = prior_embeds(consistent, 0.3).cuda()
        outs[mode] = sampler.sample(embeds, (C, S, S), uncond.cuda(), generator=gen, device="cuda")
    eager, graphs = outs[False], outs["cudagraphs"]
    assert (graphs.layers - eager.layers).abs().max() < 1e-4 * eager.layers.abs().max()
    assert torch.isinf(cross_scale_psnr(graphs.images.cpu(), P)).all()


def test_public_consolidation_is_the_blend_and_the_renders():
    """``consolidate`` / ``render_noise`` (what benchmarks time) are the Laplacian blend with
    Π_image of its layers, and Π_noise."""
    from models.zoom.blend import blend_multires
    from models.zoom.stack import render_noises

    sampler = JointZoomSampler(lambda *a: a[0], DDPMSchedule.make("linear"), N, P)
    x = torch.randn(N, C, S, S, generator=torch.Generator().manual_seed(3))
    layers, images = sampler.consolidate(x)
    torch.testing.assert_close(layers, blend_multires(x, P))
    torch.testing.assert_close(images, render_images(layers, P))
    torch.testing.assert_close(sampler.render_noise(x), render_noises(x, P))
