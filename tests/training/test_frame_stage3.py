"""Stage III (DMD): where the generator's gradient comes from, the fake score training on generator
samples, the frozen real score, iteration counting, teacher pairs, export -> pipeline -> mp4."""

import json
import shutil

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from datagen.video_io import read_mp4
from models.frame import make_teacher_pairs
from training.callbacks import PublishCheckpoint
from training.modules import frame_stage3
from training.modules.frame_common import encode_frame_batch, load_frame_export
from training.modules.frame_infer import load_pipeline, main
from training.modules.frame_stage2 import FrameModelModule
from training.modules.frame_stage3 import FrameDMDModule, load_teacher_pairs, save_teacher_pairs

S = 64
TINY_DIT = {"num_layers": 1, "num_attention_heads": 2, "attention_head_dim": 32, "sample_size": 8}


pytestmark = pytest.mark.usefixtures("one_thread")


def frame_batch(B=2, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[S * 0.9, 0, S / 2], [0, S * 0.9, S / 2], [0, 0, 1]]).expand(B, 3, 3)
    c2w = torch.eye(4).repeat(B, 2, 1, 1)
    c2w[:, 0, 0, 3] = torch.linspace(0.1, 0.4, B)
    return {
        "target": torch.rand(B, 3, S, S, generator=g),
        "anchor": torch.rand(B, 3, S, S, generator=g),
        "reference": torch.rand(B, 3, S, S, generator=g),
        "target_K": K.clone(),
        "target_c2w": c2w[:, 0],
        "reference_K": K.clone(),
        "reference_c2w": c2w[:, 1],
        "anchor_masked": torch.zeros(B, dtype=torch.bool),
    }


def make(**kw) -> FrameDMDModule:
    torch.manual_seed(0)
    args = {
        "teacher_config": dict(TINY_DIT),
        "vae": {"size": "tiny"},
        "fallback_pairs": 2,
        "teacher_steps": 2,
        "regression_batch_size": 2,
        "fake_updates_per_gen": 2,
        "lr_generator": 1e-3,
        "lr_fake": 1e-3,
    }
    return FrameDMDModule(**{**args, **kw})


def params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def trainer(tmp_path, steps, callbacks=()):
    return L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=list(callbacks),
    )


def test_generator_gradient_comes_only_from_dm_and_regression_losses():
    module = make(regression_weight=0.25, dm_weight=1.0)
    _, cond = encode_frame_batch(module.vae, frame_batch())
    # at initialisation fake == real: the distribution-matching gradient is exactly zero
    x0, _ = module.generator_sample(cond)
    dm0, _ = frame_stage3.distribution_matching_loss(
        x0, cond, module.real_score, module.fake_score, module.schedule
    )
    assert all(g is None or g.abs().max() == 0 for g in torch.autograd.grad(dm0, [x0]))
    with torch.no_grad():  # as after some fake-score updates
        for p in module.fake_score.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    torch.manual_seed(1)
    terms = module.generator_loss(cond)
    gen = [p for p in module.generator.parameters()]
    g_loss = torch.autograd.grad(terms["loss"], gen, retain_graph=True, allow_unused=True)
    g_dm = torch.autograd.grad(terms["dm"], gen, retain_graph=True, allow_unused=True)
    g_reg = torch.autograd.grad(terms["regression"], gen, retain_graph=True, allow_unused=True)
    nonzero = 0
    for a, b, c in zip(g_loss, g_dm, g_reg):
        b = torch.zeros_like(a) if b is None else b
        c = torch.zeros_like(a) if c is None else c
        torch.testing.assert_close(a, b + 0.25 * c)
        nonzero += int(a.abs().sum() > 0)
    assert nonzero > len(gen) // 2
    assert all(float(g.abs().sum()) > 0 for g in g_dm if g is not None)
    terms["loss"].backward()
    assert all(p.grad is None for p in module.fake_score.parameters())
    assert all(p.grad is None for p in module.real_score.parameters())
    assert all(not p.requires_grad for p in module.real_score.parameters())


def test_training_updates_fake_on_generator_samples_and_never_the_real_score(tmp_path, monkeypatch):
    module = make()
    samples, fake_inputs, gen_calls = [], [], []
    sample = module.generator_sample

    def recorded_sample(cond, noise=None, k=None):
        x0, k = sample(cond, noise, k)
        samples.append(x0.detach().clone())
        return x0, k

    loss_fn = frame_stage3.fake_score_loss

    def recorded_fake_loss(fake, x0, cond, schedule, t_range):
        assert fake is module.fake_score and not x0.requires_grad
        fake_inputs.append(x0.clone())
        return loss_fn(fake, x0, cond, schedule, t_range)

    gen_loss = module.generator_loss
    monkeypatch.setattr(module, "generator_sample", recorded_sample)
    monkeypatch.setattr(frame_stage3, "fake_score_loss", recorded_fake_loss)
    monkeypatch.setattr(module, "generator_loss", lambda c: gen_calls.append(1) or gen_loss(c))
    before = {
        name: params(getattr(module, name)) for name in ("real_score", "fake_score", "generator")
    }
    loader = DataLoader([frame_batch(seed=i) for i in range(4)], batch_size=None)
    t = trainer(tmp_path, 4)
    t.fit(module, loader)
    assert t.global_step == 4  # iterations: the generator's steps are not counted
    assert len(gen_calls) == 2 and len(fake_inputs) == 4 == len(samples)
    for x_fake, x_gen in zip(fake_inputs, samples):
        assert torch.equal(x_fake, x_gen)  # the fake score trains on the generator's samples
    after = {name: params(getattr(module, name)) for name in before}
    assert all(torch.equal(v, after["real_score"][k]) for k, v in before["real_score"].items())
    assert any(not torch.equal(v, after["fake_score"][k]) for k, v in before["fake_score"].items())
    assert any(not torch.equal(v, after["generator"][k]) for k, v in before["generator"].items())


def test_teacher_pairs_roundtrip_and_use(tmp_path):
    module = make()
    _, cond = encode_frame_batch(module.vae, frame_batch(B=3))
    pairs = make_teacher_pairs(module.real_score, cond, module.schedule, steps=2, seed=5)
    path = save_teacher_pairs(tmp_path / "pairs" / "teacher_pairs.safetensors", pairs, steps=2)
    back = load_teacher_pairs(path)
    assert torch.equal(back.noise, pairs.noise) and torch.equal(back.output, pairs.output)
    assert torch.equal(back.conditions.reference_c2w, pairs.conditions.reference_c2w)
    with_pairs = make(teacher_pairs=str(tmp_path / "pairs"))  # a folder holding the file
    assert len(with_pairs.pairs) == 3 and torch.equal(with_pairs.pairs.noise, pairs.noise)


def test_distils_a_stage2_export_and_the_published_generator_renders_a_path(tmp_path):
    torch.manual_seed(0)
    stage2 = FrameModelModule(dit=dict(TINY_DIT), vae={"size": "tiny"})
    stage2.export_pretrained(tmp_path / "stage2")
    module = make(teacher=str(tmp_path / "stage2"), teacher_config=None, vae=None)
    for a, b in zip(module.real_score.parameters(), stage2.dit.parameters()):
        assert torch.equal(a, b)
    store = tmp_path / "store"
    publish = PublishCheckpoint("checkpoints/frame_stage3", store=f"file://{store}")
    loader = DataLoader([frame_batch(seed=i) for i in range(2)], batch_size=None)
    trainer(tmp_path, 2, [publish]).fit(module, loader)
    index = json.loads((store / "checkpoints/frame_stage3/index.json").read_text())
    assert index["timesteps"] == [999, 200] and "dit/config.json" in index["files"]
    export = tmp_path / "export"
    shutil.copytree(store / "checkpoints/frame_stage3", export)
    loaded = load_frame_export(export)
    assert loaded.config["stage"] == 3 and loaded.config["timesteps"] == [999, 200]
    _, cond = encode_frame_batch(module.vae, frame_batch())
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([999, 200])
    with torch.no_grad():
        assert torch.equal(loaded.dit.eval()(x, t, cond), module.generator.eval()(x, t, cond))
    assert load_pipeline(export).sampler.timesteps == [999, 200]
    assert load_pipeline(export, steps=3).sampler.timesteps == [999, 666, 332]

    # the demo CLI: reference image + cloud + template path -> mp4
    import imageio.v3 as iio

    iio.imwrite(
        tmp_path / "ref.png", (np.random.default_rng(0).random((S, S, 3)) * 255).astype(np.uint8)
    )
    rng = np.random.default_rng(1)
    pts = np.concatenate(
        [rng.uniform(2, 4, (2000, 1)), rng.uniform(-1, 1, (2000, 2)) + np.array([0, 1.5])], 1
    )
    np.savez(tmp_path / "cloud.npz", points=pts, colors=rng.integers(0, 256, (2000, 3)))
    paths = main(
        [
            "--checkpoint", str(export), "--image", str(tmp_path / "ref.png"),
            "--points", str(tmp_path / "cloud.npz"), "--trajectory", "forward_dolly",
            "--out", str(tmp_path / "demo"), "--height", str(S), "--width", str(S),
            "--num-frames", "3",
        ]
    )  # fmt: skip
    assert read_mp4(paths["video"]).shape == (3, S, S, 3)
    anchors = read_mp4(paths["anchors"])
    assert anchors.shape == (3, S, S, 3) and anchors.max() > 50  # the cloud is in view
