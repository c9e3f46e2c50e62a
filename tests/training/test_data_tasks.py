import dataclasses

import numpy as np
import pytest
import torch

from datagen.clips import Clip, Provenance
from models.geometry import look_at, plucker_rays
from training.data import (
    FrameTaskConfig,
    ImageTaskConfig,
    LaLRMTaskConfig,
    VideoTaskConfig,
    augment_anchor,
    collate,
    frame_sample,
    frame_samples,
    image_samples,
    lalrm_sample,
    reference_for_target,
    video_sample,
)

H, W = 32, 48
NO_AUG = FrameTaskConfig(
    shuffle_prob=0.0, dropout_prob=0.0, block_mask_prob=0.0, anchor_mask_prob=0.0
)


def make_clip(num_frames=20, seed=0, **overrides) -> Clip:
    """Cameras on a line (x axis) looking at a point ahead, random rgb, depth 2, masked pcr."""
    rng = np.random.default_rng(seed)
    x = torch.linspace(-1.0, 1.0, num_frames, dtype=torch.float64)
    eye = torch.stack([x, torch.zeros_like(x), torch.zeros_like(x)], dim=-1)
    target = torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64).expand_as(eye)
    up = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64).expand_as(eye)
    c2w = look_at(eye, target, up).numpy()
    K = np.tile(np.array([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]]), (num_frames, 1, 1))
    ref_idx = [i for i in (0, 5, 10, 15) if i < num_frames]
    target_idx = [i for i in range(num_frames) if i not in ref_idx]
    pcr_mask = rng.random((len(target_idx), H, W)) > 0.3
    pcr_rgb = rng.integers(1, 256, (len(target_idx), H, W, 3), dtype=np.uint8)
    pcr_rgb[~pcr_mask] = 0
    fields = dict(
        key=f"clip-{seed}",
        rgb=rng.integers(0, 256, (num_frames, H, W, 3), dtype=np.uint8),
        K=K,
        c2w=c2w,
        depth=np.full((num_frames, H, W), 2.0, dtype=np.float32),
        provenance=Provenance(source_kind="synthetic", scene_id="test"),
        ref_idx=ref_idx,
        target_idx=target_idx,
        pcr_rgb=pcr_rgb,
        pcr_mask=pcr_mask,
        caption="a room",
        level_captions=["a house", "a room", "a cup on a table"],
        timestamps=np.arange(num_frames, dtype=np.float64) / 10.0,
    )
    fields.update(overrides)
    return Clip(**fields).validate()


def rng(seed=0):
    return np.random.default_rng(seed)


# --- video -------------------------------------------------------------------------------------


def test_video_sample_shapes_plucker_and_relative_poses():
    clip = make_clip()
    s = video_sample(clip, rng(), VideoTaskConfig(num_frames=6, stride=2))
    assert s["frames"].shape == (6, 3, H, W) and s["frames"].dtype == torch.float32
    assert 0.0 <= s["frames"].min() and s["frames"].max() <= 1.0
    assert s["plucker"].shape == (6, 6, H, W) and s["plucker"].dtype == torch.float32
    assert s["K"].shape == (6, 3, 3) and s["c2w"].shape == (6, 4, 4)
    assert s["frame_idx"].dtype == torch.int64
    idx = s["frame_idx"].numpy()
    assert (np.diff(idx) == 2).all() and idx[0] >= 0 and idx[-1] < clip.num_frames
    torch.testing.assert_close(s["first_frame"], s["frames"][0])
    torch.testing.assert_close(s["c2w"][0], torch.eye(4), atol=1e-6, rtol=0)
    expected_c2w = np.linalg.inv(clip.c2w[idx[0]]) @ clip.c2w[idx]
    np.testing.assert_allclose(s["c2w"].numpy(), expected_c2w, atol=1e-5)
    torch.testing.assert_close(s["plucker"], plucker_rays(s["K"], s["c2w"], H, W))
    assert s["caption"] == "a room" and s["key"] == "clip-0"
    ref = s["frames"].numpy().transpose(0, 2, 3, 1) * 255
    np.testing.assert_allclose(ref, clip.rgb[idx], atol=1e-3)


def test_video_sample_absolute_poses_resize_and_errors():
    clip = make_clip()
    cfg = VideoTaskConfig(num_frames=4, relative_to_first=False, random_start=False)
    s = video_sample(clip, rng(), cfg)
    assert s["frame_idx"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(s["c2w"].numpy(), clip.c2w[:4], atol=1e-6)
    small = video_sample(clip, rng(), dataclasses.replace(cfg, height=16))
    assert small["frames"].shape == (4, 3, 16, 24) and small["plucker"].shape == (4, 6, 16, 24)
    torch.testing.assert_close(small["K"][:, :2], s["K"][:, :2] / 2)
    with pytest.raises(ValueError, match="clip-0"):
        video_sample(clip, rng(), VideoTaskConfig(num_frames=8, stride=3))


def test_video_sample_random_start_is_seeded():
    clip = make_clip()
    cfg = VideoTaskConfig(num_frames=5, stride=1)
    starts = {int(video_sample(clip, rng(s), cfg)["frame_idx"][0]) for s in range(20)}
    assert len(starts) > 1
    a, b = (video_sample(clip, rng(3), cfg)["frame_idx"] for _ in range(2))
    assert torch.equal(a, b)


# --- LaLRM -------------------------------------------------------------------------------------


def test_lalrm_sample_sets_and_shapes():
    clip = make_clip()
    cfg = LaLRMTaskConfig(num_context=4, stride=3, num_seen=2, num_unseen=10)
    for seed in range(10):
        s = lalrm_sample(clip, rng(seed), cfg)
        ctx = s["context_idx"].numpy()
        assert (np.diff(ctx) == 3).all()
        assert s["context"].shape == (4, 3, H, W) and s["context_plucker"].shape == (4, 6, H, W)
        assert s["sup"].shape == (12, 3, H, W) and s["sup_K"].shape == (12, 3, 3)
        assert s["sup_c2w"].shape == (12, 4, 4) and s["sup_idx"].shape == (12,)
        seen = s["sup_idx"][s["sup_is_seen"]].numpy()
        unseen = s["sup_idx"][~s["sup_is_seen"] & s["sup_valid"]].numpy()
        assert set(seen) <= set(ctx) and len(set(seen)) == 2
        assert not set(unseen) & set(ctx) and len(set(unseen)) == 10
        # 10 frames in the covered range, 6 of them non-context: >= 4 unseen come from outside
        assert ((unseen < ctx[0]) | (unseen > ctx[-1])).sum() >= 4
        assert s["num_unseen"] == 10 and bool(s["sup_valid"].all())
        torch.testing.assert_close(s["context_c2w"][0], torch.eye(4), atol=1e-6, rtol=0)
        torch.testing.assert_close(
            s["context_plucker"], plucker_rays(s["context_K"], s["context_c2w"], H, W)
        )
        expected = np.linalg.inv(clip.c2w[ctx[0]]) @ clip.c2w[s["sup_idx"].numpy()]
        np.testing.assert_allclose(s["sup_c2w"].numpy(), expected, atol=1e-5)
        assert "latents" not in s


def test_lalrm_unseen_padding_and_strict():
    clip = make_clip(num_frames=12)
    cfg = LaLRMTaskConfig(num_context=5, stride=2, num_seen=3, num_unseen=10)
    s = lalrm_sample(clip, rng(), cfg)
    ctx = set(s["context_idx"].tolist())
    assert s["num_unseen"] == 7  # 12 frames - 5 context
    valid_unseen = s["sup_idx"][~s["sup_is_seen"] & s["sup_valid"]].tolist()
    assert sorted(valid_unseen) == sorted(set(range(12)) - ctx)
    assert s["sup_valid"].tolist() == [True] * 10 + [False] * 3
    assert set(s["sup_idx"][~s["sup_valid"]].tolist()) <= set(valid_unseen)
    with pytest.raises(ValueError, match="strict"):
        lalrm_sample(clip, rng(), dataclasses.replace(cfg, strict_unseen=True))
    with pytest.raises(ValueError, match="clip-0"):
        lalrm_sample(clip, rng(), LaLRMTaskConfig(num_context=7, stride=2))


def test_lalrm_latent_clip_uses_whole_clip():
    latents = np.zeros((4, 2, 4, 6), dtype=np.float32)
    clip = make_clip(num_frames=5, latents=latents, vae_id="vae-test")
    cfg = LaLRMTaskConfig(num_context=5, stride=1, num_seen=2, num_unseen=3)
    s = lalrm_sample(clip, rng(), cfg)
    assert s["latents"].shape == (4, 2, 4, 6) and s["num_unseen"] == 0
    assert s["sup_valid"].tolist() == [True, True, False, False, False]
    with pytest.raises(ValueError, match="latents"):
        lalrm_sample(clip, rng(), dataclasses.replace(cfg, num_context=3))
    assert "latents" not in lalrm_sample(
        clip, rng(), dataclasses.replace(cfg, num_context=3, use_latents=False)
    )


# --- frame -------------------------------------------------------------------------------------


def test_reference_for_target():
    refs = [0, 5, 10, 15]
    assert reference_for_target(7, refs) == 5
    assert reference_for_target(8, refs) == 10
    assert reference_for_target(3, [1, 5]) == 1  # index tie -> earlier
    assert reference_for_target(19, refs) == 15
    ts = np.array([0.0, 1.0, 2.5, 4.0, 5.0])
    assert reference_for_target(2, [0, 4], ts) == 0  # 2.5 is equidistant from 0.0 and 5.0
    ts = np.array([0.0, 0.1, 0.2, 0.9, 1.0])  # frame 2 is closer to frame 0 in time
    assert reference_for_target(2, [0, 4], ts) == 0
    assert reference_for_target(2, [0, 4]) == 0
    assert reference_for_target(3, [0, 4], ts) == 4
    ts = np.arange(5) * 0.1  # float round-off must not break the tie
    assert reference_for_target(2, [1, 3], ts) == 1


def test_frame_samples_shapes_and_references():
    clip = make_clip()
    samples = frame_samples(clip, rng(), FrameTaskConfig())
    assert len(samples) == len(clip.target_idx)
    for pos, s in enumerate(samples):
        t = clip.target_idx[pos]
        assert int(s["target_idx"]) == t
        assert int(s["reference_idx"]) == reference_for_target(t, clip.ref_idx, clip.timestamps)
        for name in ("target", "anchor", "reference"):
            assert s[name].shape == (3, H, W) and s[name].dtype == torch.float32
        assert s["anchor_mask"].shape == (1, H, W) and s["anchor_mask"].dtype == torch.float32
        assert s["target_K"].shape == (3, 3) and s["reference_c2w"].shape == (4, 4)
        assert (s["anchor"] * (1 - s["anchor_mask"])).abs().max() == 0
        assert s["anchor_masked"] is False
    s = frame_sample(clip, rng(), NO_AUG, target_pos=2)
    assert int(s["target_idx"]) == 3 and int(s["reference_idx"]) == 5
    np.testing.assert_allclose(s["target_c2w"].numpy(), clip.c2w[3], atol=1e-6)
    torch.testing.assert_close(s["anchor_mask"][0], torch.from_numpy(clip.pcr_mask[2]).float())
    torch.testing.assert_close(
        s["anchor"] * 255, s["anchor"].new_tensor(clip.pcr_rgb[2]).movedim(-1, 0)
    )
    rel = frame_sample(clip, rng(), dataclasses.replace(NO_AUG, relative_to_reference=True), 2)
    torch.testing.assert_close(rel["reference_c2w"], torch.eye(4), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="point-cloud"):
        frame_sample(make_clip(pcr_rgb=None, pcr_mask=None), rng(), NO_AUG)


def test_anchor_masking_keeps_masked_pixels_zero():
    clip = make_clip()
    cfg = FrameTaskConfig(shuffle_prob=1.0, dropout_prob=1.0, block_mask_prob=1.0)
    for seed in range(5):
        rgb, mask, masked = augment_anchor(clip.pcr_rgb[0], clip.pcr_mask[0], rng(seed), cfg)
        assert not masked and (rgb[~mask] == 0).all()
        assert mask.sum() < clip.pcr_mask[0].sum()
    # block masking alone zeroes one rectangle of at most the allowed area
    block_cfg = dataclasses.replace(NO_AUG, block_mask_prob=1.0, block_mask_max_frac=0.25)
    full = np.ones((H, W), dtype=bool)
    color = np.full((H, W, 3), 7, dtype=np.uint8)
    for seed in range(10):
        rgb, mask, _ = augment_anchor(color, full, rng(seed), block_cfg)
        ys, xs = np.nonzero(~mask)
        assert 1 <= len(ys) <= 0.25 * H * W
        assert len(ys) == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert (rgb[~mask] == 0).all() and (rgb[mask] == 7).all()
    # input rgb under an invalid mask is zeroed too
    rgb, mask, _ = augment_anchor(color, ~full, rng(), NO_AUG)
    assert not mask.any() and not rgb.any()


def test_anchor_shuffle_is_local_permutation():
    g = np.random.default_rng(1)
    mask = g.random((H, W)) > 0.4
    ids = np.arange(H * W)  # unique colour per valid pixel: (row, column, 255)
    rgb = np.stack([ids // W, ids % W, np.full_like(ids, 255)], -1).reshape(H, W, 3)
    rgb = np.where(mask[..., None], rgb, 0).astype(np.uint8)
    for window in (1, 2, 3):
        cfg = dataclasses.replace(NO_AUG, shuffle_prob=1.0, shuffle_window=window)
        out, out_mask, _ = augment_anchor(rgb, mask, rng(window), cfg)
        assert out_mask.sum() == mask.sum()
        assert sorted(map(tuple, out.reshape(-1, 3))) == sorted(map(tuple, rgb.reshape(-1, 3)))
        assert (out[~out_mask] == 0).all() and (out[out_mask, 2] == 255).all()
        ys, xs = np.nonzero(out_mask)
        src_y, src_x = out[ys, xs, 0].astype(int), out[ys, xs, 1].astype(int)
        assert mask[src_y, src_x].all()  # only valid points moved into valid slots
        assert np.abs(src_y - ys).max() <= window and np.abs(src_x - xs).max() <= window
        assert (src_y != ys).any()  # it did shuffle


def test_frame_augmentation_deterministic_and_anchor_mask_prob():
    clip = make_clip()
    cfg = FrameTaskConfig(shuffle_prob=1.0, dropout_prob=1.0, block_mask_prob=1.0)
    a = frame_samples(clip, rng(7), cfg)
    b = frame_samples(clip, rng(7), cfg)
    c = frame_samples(clip, rng(8), cfg)
    assert all(torch.equal(x["anchor"], y["anchor"]) for x, y in zip(a, b))
    assert all(torch.equal(x["anchor_mask"], y["anchor_mask"]) for x, y in zip(a, b))
    assert not all(torch.equal(x["anchor_mask"], y["anchor_mask"]) for x, y in zip(a, c))
    s1 = frame_sample(clip, rng(3), cfg)
    s2 = frame_sample(clip, rng(3), cfg)
    assert torch.equal(s1["target_idx"], s2["target_idx"])
    assert torch.equal(s1["anchor"], s2["anchor"])
    masked = frame_sample(clip, rng(), dataclasses.replace(cfg, anchor_mask_prob=1.0))
    assert masked["anchor_masked"] is True
    assert not masked["anchor"].any() and not masked["anchor_mask"].any()


# --- image -------------------------------------------------------------------------------------


def test_image_samples_captions_and_resize():
    clip = make_clip()
    out = image_samples(clip, rng(), ImageTaskConfig(frames_per_clip=3, caption_level="clip"))
    assert len(out) == 3 and all(s["caption"] == "a room" and s["key"] == "clip-0" for s in out)
    assert out[0]["image"].shape == (3, H, W) and out[0]["image"].dtype == torch.float32
    assert len({int(s["frame_idx"]) for s in out}) == 3
    frame = int(out[0]["frame_idx"])
    np.testing.assert_allclose(
        out[0]["image"].permute(1, 2, 0).numpy() * 255, clip.rgb[frame], atol=1e-3
    )
    lvl = image_samples(clip, rng(), ImageTaskConfig(caption_level=2))
    assert lvl[0]["caption"] == "a cup on a table"
    assert image_samples(clip, rng(), ImageTaskConfig(caption_level=-3))[0]["caption"] == "a house"
    no_levels = make_clip(level_captions=[])
    assert (
        image_samples(no_levels, rng(), ImageTaskConfig(caption_level=1))[0]["caption"] == "a room"
    )
    captions = {
        s["caption"]
        for seed in range(30)
        for s in image_samples(clip, rng(seed), ImageTaskConfig(frames_per_clip=2))
    }
    assert captions == {"a house", "a room", "a cup on a table"}
    small = image_samples(clip, rng(), ImageTaskConfig(height=16, width=24))
    assert small[0]["image"].shape == (3, 16, 24)
    assert (
        len(image_samples(make_clip(num_frames=2), rng(), ImageTaskConfig(frames_per_clip=5))) == 2
    )
    with pytest.raises(ValueError, match="caption_level"):
        image_samples(clip, rng(), ImageTaskConfig(caption_level="zoom"))


# --- collate -----------------------------------------------------------------------------------


def test_collate_stacks_tensors_and_keeps_strings():
    clips = [make_clip(seed=i) for i in range(3)]
    video = collate([video_sample(c, rng(), VideoTaskConfig(num_frames=4)) for c in clips])
    assert video["frames"].shape == (3, 4, 3, H, W) and video["plucker"].shape == (3, 4, 6, H, W)
    assert video["key"] == ["clip-0", "clip-1", "clip-2"] and video["caption"] == ["a room"] * 3
    cfg = LaLRMTaskConfig(num_context=4, stride=3, num_seen=2, num_unseen=4)
    lalrm = collate([lalrm_sample(c, rng(), cfg) for c in clips])
    assert lalrm["sup"].shape == (3, 6, 3, H, W) and lalrm["sup_valid"].dtype == torch.bool
    assert lalrm["num_unseen"].tolist() == [4, 4, 4]
    frames = collate(frame_samples(clips[0], rng(), FrameTaskConfig()))
    assert frames["anchor"].shape == (16, 3, H, W) and frames["target_idx"].shape == (16,)
    assert frames["anchor_masked"].dtype == torch.bool and frames["anchor_masked"].shape == (16,)
    images = collate(image_samples(clips[0], rng(), ImageTaskConfig(frames_per_clip=2)))
    assert images["image"].shape == (2, 3, H, W) and len(images["caption"]) == 2
    mixed = collate([{"x": 1.5, "y": None}, {"x": 2.5, "y": "a"}])
    assert mixed["x"].dtype == torch.float32 and mixed["y"] == [None, "a"]
    with pytest.raises(ValueError, match="keys"):
        collate([{"a": 1}, {"b": 1}])
    with pytest.raises(ValueError, match="shapes"):
        collate([{"a": torch.zeros(2)}, {"a": torch.zeros(3)}])
