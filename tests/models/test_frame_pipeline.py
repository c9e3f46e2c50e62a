"""FramePipeline: frame shape, the anchor render, the 2 generator steps, and the streaming cache
(one VAE encode of the reference for a whole path)."""

import pytest
import torch

from models.autoencoders import build_image_vae
from models.frame import DiffusionSchedule, FrameDiT, FramePipeline
from models.geometry import K_from_fov, look_at
from models.render import render_points

S = 64


pytestmark = pytest.mark.usefixtures("one_thread")


def path(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    eye = torch.stack([torch.linspace(-0.3, 0.3, n), torch.zeros(n), torch.full((n,), -2.0)], -1)
    up = torch.tensor([0.0, -1.0, 0.0]).expand(n, 3)
    return K_from_fov(60.0, S, S).expand(n, 3, 3), look_at(eye, torch.zeros(n, 3), up).float()


def cloud(n=3000):
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(n, 3, generator=g) * torch.tensor([2.0, 2.0, 0.5]) - torch.tensor([1, 1, 0.0])
    return pts, torch.rand(n, 3, generator=g)


class CountingVAE(torch.nn.Module):
    """Wraps a VAE and records the inputs of every ``encode``."""

    def __init__(self, vae):
        super().__init__()
        self.vae, self.encoded = vae, []

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.vae, name)

    def encode(self, x):
        self.encoded.append(x.detach().clone())
        return self.vae.encode(x)

    def decode(self, z):
        return self.vae.decode(z)


def make_pipeline(**kw):
    torch.manual_seed(0)
    dit = FrameDiT(num_layers=1, num_attention_heads=2, attention_head_dim=32, sample_size=8)
    vae = CountingVAE(build_image_vae("tiny"))
    return FramePipeline(dit, vae, DiffusionSchedule(), **kw), dit, vae


def test_renders_a_frame_and_the_anchor():
    pipe, dit, _ = make_pipeline()
    Ks, c2ws = path(2)
    pts, cols = cloud()
    with pytest.raises(RuntimeError, match="set_scene"):
        pipe.render(Ks[0], c2ws[0])
    pipe.set_scene(torch.rand(3, S, S), Ks[0], c2ws[0], pts, cols)
    seen = []
    orig = dit.forward
    dit.forward = lambda x, t, c, **kw: seen.append(t.tolist()) or orig(x, t, c, **kw)
    frame, anchor = pipe.render(Ks[1], c2ws[1], return_anchor=True)
    assert frame.shape == (3, S, S) and 0 <= float(frame.min()) and float(frame.max()) <= 1
    assert seen == [[999], [200]]  # 2 generator steps
    expected, mask, _ = render_points(pts, cols, Ks[1], c2ws[1], S, S)
    assert torch.equal(anchor, expected) and mask.float().mean() > 0.2


def test_streaming_reuses_the_reference_cache():
    pipe, dit, vae = make_pipeline()
    Ks, c2ws = path(4)
    ref = torch.rand(3, S, S)
    pts, cols = cloud()
    pipe.set_scene(ref, Ks[0], c2ws[0], pts, cols)
    calls = {"embed_reference": 0}
    orig = dit.embed_reference

    def counted(cond):
        calls["embed_reference"] += 1
        return orig(cond)

    dit.embed_reference = counted
    frames = pipe.render_path(Ks, c2ws)
    assert frames.shape == (4, 3, S, S)
    ref_model = ref[None] * 2 - 1
    ref_encodes = sum(torch.equal(x, ref_model) for x in vae.encoded)
    assert ref_encodes == 1  # once in set_scene, never again along the path
    assert len(vae.encoded) == 1 + 4  # + one anchor encode per frame
    assert calls["embed_reference"] == 0  # reference tokens come from the cache
    # the stream equals rendering frame by frame (same cached noise for every frame)
    again = torch.stack([pipe.render(K, c) for K, c in zip(Ks, c2ws)])
    torch.testing.assert_close(again, frames)
    # anchors differ along the path, so do frames
    assert (frames[0] - frames[-1]).abs().max() > 1e-4


def test_gaussian_scene():
    pipe, _, _ = make_pipeline()
    Ks, c2ws = path(2)
    pts, cols = cloud(500)
    n = len(pts)
    gaussians = {
        "means": pts,
        "quats": torch.tensor([1.0, 0, 0, 0]).expand(n, 4),
        "scales": torch.full((n, 3), 0.03),
        "opacities": torch.full((n,), 0.9),
        "colors": cols,
    }
    pipe.set_scene(torch.rand(3, S, S), Ks[0], c2ws[0], gaussians=gaussians)
    anchor = pipe.render_anchor(Ks[1], c2ws[1])
    assert anchor.shape == (3, S, S) and anchor.max() > 0.1
    assert pipe.render(Ks[1], c2ws[1]).shape == (3, S, S)
    with pytest.raises(ValueError, match="either"):
        pipe.set_scene(torch.rand(3, S, S), Ks[0], c2ws[0])


@pytest.mark.parametrize("attention", ["full", "causal"])
def test_compiled_frame_graph_matches_eager_and_a_new_scene_does_not_recompile(attention):
    """``compile()`` traces a frame's whole work (encode, keys/values, 2 steps, decode) as one
    graph without breaks; later frames and a new scene reuse it; frames equal the eager ones."""
    from torch._dynamo.testing import CompileCounter

    torch.manual_seed(0)
    dit = FrameDiT(num_layers=1, num_attention_heads=2, attention_head_dim=32, sample_size=8,
                   condition_attention=attention)  # fmt: skip
    vae = build_image_vae("tiny")
    eager = FramePipeline(dit, vae, DiffusionSchedule())
    compiled = FramePipeline(dit, vae, DiffusionSchedule())
    torch._dynamo.reset()
    counter = CompileCounter()
    assert compiled.compile(mode=None, backend=counter) is compiled
    Ks, c2ws = path(3)
    pts, cols = cloud()
    for seed in (0, 1):
        ref = torch.rand(3, S, S, generator=torch.Generator().manual_seed(seed))
        for pipe in (eager, compiled):
            pipe.set_scene(ref, Ks[0], c2ws[0], pts, cols)
        for i in (1, 2):
            frame = compiled.render(Ks[i], c2ws[i])
            torch.testing.assert_close(frame, eager.render(Ks[i], c2ws[i]), rtol=0, atol=1e-5)
    assert counter.frame_count == 1 and counter.op_count > 50


def test_render_from_anchor_names_a_wrong_shape():
    pipe, _, _ = make_pipeline()
    Ks, c2ws = path(2)
    pts, cols = cloud()
    pipe.set_scene(torch.rand(3, S, S), Ks[0], c2ws[0], pts, cols)
    anchor = pipe.render_anchor(Ks[1], c2ws[1])
    torch.testing.assert_close(
        pipe.render_from_anchor(anchor, Ks[1], c2ws[1]), pipe.render(Ks[1], c2ws[1])
    )
    with pytest.raises(ValueError, match=r"anchor_rgb must be \[3, 64, 64\], got \[3, 32, 32\]"):
        pipe.render_from_anchor(torch.rand(3, 32, 32), Ks[1], c2ws[1])
