"""Generated videos: RealEstate10K-like camera paths, conditioning from images and worlds, clips
without depth, and their round trip through `generated` shard sets (latents, provenance) into
the LaLRM task."""

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.numpy import load as load_safetensors

from datagen.clips import ClipValidationError
from datagen.clips.clip import NO_DEPTH
from datagen.generated import (
    RE10K_TEMPLATE_WEIGHTS,
    SHARDS_PREFIX,
    check_batch,
    choose_template,
    crop_resize,
    free_camera_path,
    generate_batch,
    generated_preview,
    image_conditionings,
    load_image_ref,
    world_conditionings,
    write_generated_shards,
)
from datagen.shards import check_shard_set, load_manifest, published_sets, read_clips
from datagen.store import LocalStore
from datagen.trajectories import TEMPLATES
from datagen.video_io import read_mp4
from tests.fixtures.clips import make_clip
from tests.fixtures.ingest_scene import textured_room
from training.data.lalrm_task import LaLRMTaskConfig, lalrm_sample

F, S = 9, 32  # frames, pixels


class ShiftGenerator:
    """A stand-in video model: frame t = the image rolled t pixels right; latents [4, 3, 4, 4]
    drawn from the seed. Records its calls."""

    checkpoint = "file:///store/checkpoints/camera_video_model/v1"
    vae_id = "file:///store/checkpoints/camera_video_model/v1/vae"

    def __init__(self):
        self.settings = {"steps": 3, "guidance_scale": 1.0}
        self.calls = []

    def __call__(self, image, K, c2w, caption, seed):
        self.calls.append((K.clone(), c2w.clone(), caption, seed))
        frames = torch.stack([torch.roll(image, t, dims=-1) for t in range(c2w.shape[0])])
        latents = torch.randn(4, 3, S // 8, S // 8, generator=torch.Generator().manual_seed(seed))
        return latents, frames


def _images(n: int = 2) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [(f"img{i}.png", rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)) for i in range(n)]


def _is_rotation(c2w: np.ndarray) -> bool:
    R = c2w[:, :3, :3]
    return np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-6) and np.allclose(
        np.linalg.det(R), 1.0
    )


@pytest.mark.parametrize("template", TEMPLATES)
def test_free_camera_paths_are_smooth_rigid_and_seeded(template):
    c2w, params = free_camera_path(np.random.default_rng(3), template, 17)
    again, _ = free_camera_path(np.random.default_rng(3), template, 17)
    np.testing.assert_array_equal(c2w, again)
    assert c2w.shape == (17, 4, 4) and _is_rotation(c2w)
    np.testing.assert_allclose(c2w[0, :3, 3], [0, 0, 1.5], atol=1e-9)  # starts at the eye
    steps = np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=1)
    assert steps.max() < 0.5  # no jumps
    assert "yaw_deg" in params
    moved = np.linalg.norm(c2w[-1, :3, 3] - c2w[0, :3, 3])
    turned = np.degrees(np.arccos(np.clip(c2w[0, :3, 2] @ c2w[-1, :3, 2], -1, 1)))
    assert moved > 0.05 or turned > 5.0  # the camera does something


def test_path_scale_scales_translations_only():
    a, _ = free_camera_path(np.random.default_rng(1), "truck", 9, path_scale=1.0)
    b, _ = free_camera_path(np.random.default_rng(1), "truck", 9, path_scale=2.0)
    np.testing.assert_allclose(b[:, :3, :3], a[:, :3, :3], atol=1e-12)
    np.testing.assert_allclose(b[:, :3, 3] - b[:1, :3, 3], 2 * (a[:, :3, 3] - a[:1, :3, 3]))


def test_template_choice_follows_the_re10k_mix_or_the_given_list():
    rng = np.random.default_rng(0)
    counts = {name: 0 for name in RE10K_TEMPLATE_WEIGHTS}
    for _ in range(4000):
        counts[choose_template(rng)] += 1
    for name, weight in RE10K_TEMPLATE_WEIGHTS.items():
        assert abs(counts[name] / 4000 - weight) < 0.03, (name, counts)
    assert {choose_template(rng, ["pan"]) for _ in range(10)} == {"pan"}
    with pytest.raises(ValueError, match=r"unknown trajectory templates \['spin'\]"):
        choose_template(rng, ["pan", "spin"])


def test_crop_resize_keeps_the_centre():
    rgb = np.zeros((40, 80, 3), np.uint8)
    rgb[:, 20:60] = 200  # the centre square
    out = crop_resize(rgb, 16, 16)
    assert out.shape == (16, 16, 3) and out.min() >= 190
    assert crop_resize(rgb, 20, 40).shape == (20, 40, 3)
    with pytest.raises(ValueError, match="uint8"):
        crop_resize(rgb.astype(np.float32), 8, 8)


def test_load_image_ref_reads_files_and_store_keys(tmp_path):
    from PIL import Image

    store = LocalStore(tmp_path / "store")
    Image.fromarray(np.full((6, 5, 4), 90, np.uint8)).save(tmp_path / "a.png")  # RGBA
    assert load_image_ref(str(tmp_path / "a.png")).shape == (6, 5, 3)
    assert load_image_ref((tmp_path / "a.png").as_uri()).shape == (6, 5, 3)
    store.put_file("inputs/a.png", tmp_path / "a.png")
    assert load_image_ref("inputs/a.png", store)[0, 0].tolist() == [90, 90, 90]
    with pytest.raises(ValueError, match=r"'missing\.png': not a file nor a key of file://"):
        load_image_ref("missing.png", store)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"bad\.png.*cannot decode"):
        load_image_ref(str(tmp_path / "bad.png"))


def test_world_conditionings_render_the_first_view_of_a_valid_path():
    world = textured_room()
    conds = world_conditionings([world], 2, F, S, S, np.random.default_rng(0), ["forward_dolly"])
    assert len(conds) == 2
    for cond in conds:
        assert cond.image.shape == (S, S, 3) and cond.image.std() > 5  # a real render
        assert cond.K.shape == (F, 3, 3) and cond.c2w.shape == (F, 4, 4)
        assert cond.source["kind"] == "world" and cond.source["template"] == "forward_dolly"
        assert cond.name == world.id and cond.caption == world.captions()[0]
    assert not np.array_equal(conds[0].c2w, conds[1].c2w)


def test_generated_clips_round_trip_through_shards_with_latents_and_provenance(tmp_path):
    store = LocalStore(tmp_path / "store")
    conds = image_conditionings(
        _images(), 3, F, S, S, np.random.default_rng(0), captions=["a", "b"]
    )
    gen = ShiftGenerator()
    records = generate_batch(store, "b0", gen, conds, seed=7, fps=8.0, progress=False)
    assert [r.key for r in records] == ["b0-00000", "b0-00001", "b0-00002"]
    assert [c[3] for c in gen.calls] == [7, 8, 9] and [c[2] for c in gen.calls] == ["a", "b", "a"]
    torch.testing.assert_close(gen.calls[0][1], torch.from_numpy(conds[0].c2w).float())

    manifest = write_generated_shards(store, "b0")
    assert published_sets(store, SHARDS_PREFIX) == ["shards/generated/b0"]  # the LaLRM contract
    assert manifest.dataset == "generated" and manifest.num_samples == 3
    assert load_manifest(store, "shards/generated/b0").provenance["generator_checkpoints"] == [
        gen.checkpoint
    ]
    assert check_shard_set(store, "shards/generated/b0").ok
    clips = list(read_clips(store, "shards/generated/b0"))
    for i, (clip, cond) in enumerate(zip(clips, conds)):
        latents = torch.randn(4, 3, 4, 4, generator=torch.Generator().manual_seed(7 + i)).numpy()
        np.testing.assert_array_equal(clip.latents, latents)  # bit-exact
        stored = load_safetensors(store.get_bytes(records[i].files["latents"]))["latents"]
        np.testing.assert_array_equal(stored, latents)
        assert clip.vae_id == gen.vae_id and clip.caption == cond.caption
        np.testing.assert_array_equal(clip.rgb[0], cond.image)  # lossless frames
        np.testing.assert_array_equal(clip.rgb[3], np.roll(cond.image, 3, axis=1))
        np.testing.assert_allclose(clip.c2w[0], np.eye(4), atol=1e-6)  # relative to frame 0
        rel = np.linalg.inv(cond.c2w[0]) @ cond.c2w
        np.testing.assert_allclose(clip.c2w, rel, atol=1e-5)
        np.testing.assert_allclose(clip.K, cond.K, rtol=1e-6)
        assert not clip.depth.any() and clip.depth_conf is None  # no depth, explicitly
        p = clip.provenance
        assert p.source_kind == "generated" and p.depth_estimator == NO_DEPTH
        assert p.pose_estimator == "conditioning" and p.generator_checkpoint == gen.checkpoint
        assert p.extra["generation"] == {"steps": 3, "guidance_scale": 1.0, "seed": 7 + i}
        assert p.extra["kind"] == "image" and p.extra["template"] in TEMPLATES
        np.testing.assert_allclose(p.extra["first_c2w"], cond.c2w[0])
        assert clip.ref_idx == [0] and clip.target_idx == []
    video = read_mp4(store.root / records[0].files["video"])
    assert video.shape == (F, S, S, 3)
    meta = store.get_json(records[0].files["meta"])
    assert meta["settings"]["seed"] == 7 and len(meta["c2w"]) == F
    assert generated_preview(records).shape[0] > 3 * 72

    # the LaLRM stage-2 task reads them: whole clip as context, latents attached
    cfg = LaLRMTaskConfig(num_context=F, stride=1, num_seen=4, num_unseen=0, random_start=False)
    sample = lalrm_sample(clips[0], np.random.default_rng(0), cfg)
    np.testing.assert_array_equal(sample["latents"].numpy(), clips[0].latents)
    torch.testing.assert_close(sample["context_c2w"][0], torch.eye(4))

    # a re-run replaces the batch
    generate_batch(store, "b0", gen, conds[:1], progress=False)
    assert write_generated_shards(store, "b0").num_samples == 1


def test_no_depth_is_explicit():
    clip = make_clip(num_frames=3, with_extras=False)
    none = dataclasses.replace(clip.provenance, depth_estimator=NO_DEPTH)
    dataclasses.replace(clip, depth=np.zeros_like(clip.depth), provenance=none).validate()
    with pytest.raises(ClipValidationError, match=r"no depth.*non-zero"):
        dataclasses.replace(clip, provenance=none).validate()
    with pytest.raises(ClipValidationError, match="no valid"):  # depth still required otherwise
        dataclasses.replace(clip, depth=np.zeros_like(clip.depth)).validate()


def test_bad_batches_and_mismatched_generators_fail_clearly(tmp_path):
    store = LocalStore(tmp_path / "store")
    with pytest.raises(ValueError, match=r"invalid generation batch 'a\.b'"):
        check_batch("a.b")
    conds = image_conditionings(_images(1), 1, F, S, S, np.random.default_rng(0))

    class Short(ShiftGenerator):
        def __call__(self, image, K, c2w, caption, seed):
            latents, frames = super().__call__(image, K, c2w, caption, seed)
            return latents, frames[:5]

    with pytest.raises(ValueError, match="b1-00000: the generator returned 5 frames for 9"):
        generate_batch(store, "b1", Short(), conds, progress=False)
    with pytest.raises(ValueError, match="no generated clips under"):
        write_generated_shards(store, "b2")
