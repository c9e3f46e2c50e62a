"""Frame-model evaluation: the reprojection consistency measure on an analytic planar scene, the
anchor-only baseline computed from the stored point-cloud renders, teacher and generator sharing
noise, the preview strip, held-out set selection."""

import math

import numpy as np
import pytest
import torch

from datagen.shards import manifest_key, write_shard_set
from datagen.store import LocalStore
from models.autoencoders import ssim
from tests.fixtures.clips import make_clip
from training.data.frame_clips import iter_set_clips
from training.evaluation.frame_model import (
    FrameEvalConfig,
    evaluate_frame_models,
    held_out_sets,
    psnr,
)
from training.evaluation.reprojection import masked_psnr, reproject, reprojection_psnr
from training.modules.frame_common import load_frame_export
from training.modules.frame_stage2 import FrameModelModule

S = 32
TINY_DIT = {"num_layers": 1, "num_attention_heads": 2, "attention_head_dim": 16, "sample_size": 4}


pytestmark = pytest.mark.usefixtures("one_thread")


def plane_path(shifts=(0.0, 0.1, 0.2), depth=2.0, f=32.0, period=1.0):
    """Frames of a textured fronto-parallel plane at z = depth seen by cameras translated along x:
    (frames [T, 3, S, S], depth [T, S, S], K [T, 3, 3], c2w [T, 4, 4])."""
    K = torch.tensor([[f, 0, S / 2], [0, f, S / 2], [0, 0, 1.0]]).expand(len(shifts), 3, 3)
    c2w = torch.eye(4).repeat(len(shifts), 1, 1)
    c2w[:, 0, 3] = torch.tensor(shifts)
    uv = torch.arange(S) + 0.5
    X = (uv[None, :] - S / 2) / f * depth + c2w[:, 0, 3, None, None]  # [T, 1, S]
    Y = ((uv[:, None] - S / 2) / f * depth)[None]  # [1, S, 1]
    w = 2 * math.pi / period
    frames = torch.stack(
        [0.5 + 0.3 * torch.sin(w * X + p) * torch.cos(w * Y - p) for p in (0.0, 1.0, 2.0)], 1
    )
    return frames, torch.full((len(shifts), S, S), depth), K.clone(), c2w


def test_reprojection_identity_and_planar_translation():
    frames, depth, K, c2w = plane_path()
    same, valid = reproject(frames, depth, K, c2w, K, c2w, depth)
    torch.testing.assert_close(same, frames, atol=1e-5, rtol=0)  # pixel centres map onto themselves
    assert bool(valid.all())
    scores, fraction = reprojection_psnr(frames, depth, K, c2w)
    assert scores.shape == fraction.shape == (2,)
    assert bool((scores > 35).all())  # a consistent path: only bilinear resampling error
    # a shift of f * 0.1 / 2 = 1.6 px: the first 1.6 columns of view t are outside view t+1
    torch.testing.assert_close(fraction, torch.full((2,), (S - 1.6) / S), atol=1 / S, rtol=0)
    covered = torch.ones(3, S, S)
    covered[0, :, : S // 2] = 0  # no content on frame 0's left half (the columns that leave)
    _, masked = reprojection_psnr(frames, depth, K, c2w, masks=covered)
    assert float(masked[0]) == pytest.approx(0.5) and float(masked[1]) == pytest.approx(
        float(fraction[1])
    )
    noisy = frames.clone()
    noisy[1] = (
        noisy[1] + 0.1 * torch.randn(noisy[1].shape, generator=torch.Generator().manual_seed(0))
    ).clamp(0, 1)
    worse, _ = reprojection_psnr(noisy, depth, K, c2w)
    assert bool((worse < scores - 10).all())
    occluded = depth.clone()
    occluded[1, :, : S // 2] = 1.0  # view 1 sees something nearer on its left half
    _, partly = reproject(frames[1:2], depth[:1], K[:1], c2w[:1], K[1:2], c2w[1:2], occluded[1:2])
    assert 0.4 < float(partly.float().mean()) < 0.6
    assert math.isnan(
        float(masked_psnr(frames[:1], frames[:1], torch.zeros(1, S, S, dtype=torch.bool))[0])
    )


@pytest.fixture
def store(tmp_path):
    store = LocalStore(tmp_path / "store")
    clips = [make_clip(f"c{i}", num_frames=8, height=S, width=S, seed=i) for i in range(2)]
    write_shard_set(store, "shards/synthetic/w0", clips, "synthetic", "w0", progress=False)
    return store


def test_anchor_baseline_teacher_and_generator_and_preview(store, tmp_path):
    torch.manual_seed(0)
    FrameModelModule(dit=dict(TINY_DIT), vae={"size": "tiny"}).export_pretrained(tmp_path / "t")
    teacher = load_frame_export(tmp_path / "t")
    generator = load_frame_export(tmp_path / "t")
    # the teacher's own 2-step DDIM as a "generator": the few-step sampler must agree exactly
    generator.config["timesteps"] = teacher.schedule.ddim_timesteps(2)
    cfg = FrameEvalConfig(teacher_steps=2, batch_size=3, preview_rows=3)
    result = evaluate_frame_models(
        iter_set_clips(store, ["shards/synthetic/w0"]), teacher, generator, cfg
    )
    m = result.metrics
    assert m["clips"] == 2 and m["frames"] == 8  # 2 clips x 4 targets
    assert all(math.isfinite(v) for v in m.values())
    assert m["generator/psnr"] == pytest.approx(m["teacher/psnr"], abs=1e-4)
    assert m["generator/ssim"] == pytest.approx(m["teacher/ssim"], abs=1e-5)
    # the anchor-only baseline is the stored point-cloud render (holes black) against the target
    gt, anchors, coverage = [], [], []
    for _, clip in iter_set_clips(store, ["shards/synthetic/w0"]):
        for pos, t in enumerate(clip.target_idx):
            mask = clip.pcr_mask[pos]
            anchors.append(np.where(mask[..., None], clip.pcr_rgb[pos], 0) / 255.0)
            gt.append(clip.rgb[t] / 255.0)
            coverage.append(mask.mean())
    a = torch.tensor(np.stack(anchors)).permute(0, 3, 1, 2).float()
    g = torch.tensor(np.stack(gt)).permute(0, 3, 1, 2).float()
    mse = ((a - g) ** 2).mean((1, 2, 3))
    assert m["anchor/psnr"] == pytest.approx(float((-10 * torch.log10(mse)).mean()), abs=1e-4)
    assert m["anchor/ssim"] == pytest.approx(float(ssim(a, g).mean()), abs=1e-5)
    assert m["anchor/coverage"] == pytest.approx(float(np.mean(coverage)), abs=1e-6)
    # 3 consecutive pairs per clip, the ground truth's ceiling measured as well
    assert m["consistency/pairs"] <= 6 and 0 < m["consistency/covisible_fraction"] <= 1
    assert result.preview.shape == (3 * 98 + 2, 4 * 98 + 2, 3) and result.preview.dtype == np.uint8
    assert [c["clip"] for c in result.clips] == ["c0", "c1"]
    assert psnr(g, g).min() == pytest.approx(100.0)


def test_held_out_sets_are_the_ones_outside_the_lineage(store):
    write_shard_set(
        store, "shards/synthetic/w1", [make_clip("d0", 8, S, S)], "synthetic", "w1", progress=False
    )
    sets = ["shards/synthetic/w0", "shards/synthetic/w1"]
    trained = [store.uri(manifest_key("shards/synthetic/w0")), "file:///elsewhere"]
    assert held_out_sets(store, sets, trained) == (["shards/synthetic/w1"], True)
    everything = [store.uri(manifest_key(p)) for p in sets]
    assert held_out_sets(store, sets, everything) == (sets, False)
