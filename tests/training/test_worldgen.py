"""World generation end to end: a 3-level world with the analytic denoiser and an oracle depth
writes every output and is cross-scale consistent (better than without photograph guidance);
checkpoints resolve from flags and the registry, with recorded fallbacks; a random tiny stage-I
prior drives the latent path."""

import itertools
import math

import pytest
import torch

from datagen.store import LocalStore
from datagen.world_files import (
    read_manifest,
    read_npy,
    read_surfels_ply,
    video_frame_count,
)
from models.geometry import K_from_fov
from models.worldgen import (
    AnalyticImageModel,
    DepthPrediction,
    PlaneDepth,
    WorldModels,
    initial_world,
    zoom_step,
)
from models.zoom.toy import toy_targets
from training import registry
from training.publish import publish_directory
from training.worldgen import (
    GenerationOptions,
    build_models,
    consistency_psnr,
    generate,
    resolve_checkpoints,
    write_world,
)

S, N, P = 32, 3, 2
PLANE = PlaneDepth(torch.tensor([0.0, 0.0, 3.0]), torch.tensor([0.15, 0.1, -1.0]))


pytestmark = pytest.mark.usefixtures("one_thread")


class AffinePlane:
    """The scene's exact depth through an unknown affine map (registration must undo it)."""

    name = "oracle (affine)"

    def __call__(self, image, K, c2w):
        return DepthPrediction(0.4 * PLANE(image, K, c2w).value + 0.5)


def _toy_world(photo_guidance: bool, seed: int = 0):
    """3 levels of a slanted textured plane: level prompts are the zoom-consistent toy targets
    (prior std 0.25); the base level from the plane's exact depth, the zoom steps from the affine
    oracle; focal zoom (exact sub-rectangles)."""
    targets = (toy_targets(N, 3, S, P, generator=torch.Generator().manual_seed(seed)) + 1) / 2
    prompts = [f"level {i}" for i in range(N)]
    model = AnalyticImageModel(std=0.25, targets=dict(zip(prompts, targets)))
    options = GenerationOptions(
        levels=N, p=P, steps=20, seed=seed, zoom_mode="focal", device="cpu", backend="torch",
        photo_guidance=photo_guidance, fit_steps=3, refine_steps=30, frames_per_level=3,
        orbit_frames=3, fps=4.0,
    )  # fmt: skip
    cfg = options.synthesis_config()
    K = K_from_fov(options.fov_deg, S, S, dtype=torch.float64)
    world = initial_world(targets[0], K, torch.eye(4).double(), prompts[0],
                          WorldModels(model, PLANE), cfg, seed)  # fmt: skip
    for level in range(1, N):
        world = zoom_step(world, prompts[level], WorldModels(model, AffinePlane()), cfg,
                          seed=seed + level)  # fmt: skip
    return world, options


def test_three_level_world_writes_every_output_and_is_cross_scale_consistent(tmp_path):
    world, options = _toy_world(photo_guidance=True)
    manifest = write_world(world, tmp_path / "world", options, {"seed": 0, "checkpoints": {}})
    out = tmp_path / "world"
    saved = read_manifest(out)
    assert saved["num_levels"] == len(saved["levels"]) == 3
    assert saved == manifest and saved["format"] == "wonderforge.world"
    for lv, level in zip(saved["levels"], world.levels):
        files = lv["files"]
        for name in ("ply", "image", "depth", "depth_npy", "orbit"):
            assert (out / files[name]).is_file()
        assert ("coarse" in files) == (lv["index"] > 0)
        surfels = read_surfels_ply(out / files["ply"], lv["log_scale"])
        assert len(surfels) == lv["num_surfels"] == level.num_surfels
        torch.testing.assert_close(surfels.means, world.level_surfels(lv["index"]).means)
        assert video_frame_count(out / files["orbit"]) == options.orbit_frames
        assert torch.equal(
            torch.from_numpy(read_npy(out / files["depth_npy"])), level.depth.float()
        )
        assert len(lv["K"]) == 3 and len(lv["c2w"]) == 4 and lv["prompt"] == f"level {lv['index']}"
    expected = (N - 1) * options.frames_per_level + 1
    assert video_frame_count(out / "zoom.mp4") == expected == saved["videos"]["zoom_frames"]
    assert (out / "preview.png").is_file()
    # log scales: one log2(p) per level
    scales = [lv["log_scale"] for lv in saved["levels"]]
    assert [b - a for a, b in itertools.pairwise(scales)] == pytest.approx([1.0, 1.0])
    # depth registration undid the estimator's affine map (scale 2.5, shift -1.25)
    for level in world.levels[1:]:
        reg = level.stats["registration"]
        assert reg["scale"] == pytest.approx(2.5, rel=0.05)
        true = PLANE(level.image, level.K, level.c2w).value
        assert ((level.depth - true).abs() / true).median() < 0.03
    # cross-scale consistency of the rendered levels, against a run without photo guidance
    psnr = manifest["consistency_psnr_db"]
    baseline, _ = _toy_world(photo_guidance=False)
    base = consistency_psnr(baseline, backend="torch")
    assert min(psnr) > 26.0
    assert min(psnr) > max(base) + 3.0


def _publish(store, model: str, version: str) -> str:
    folder = store.root.parent / "exports" / model / version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    publish_directory(folder, store, registry.version_prefix(model, version), {})
    registry.promote_latest(store, model, version)
    return registry.version_prefix(model, version)


def test_checkpoints_resolve_from_flags_and_the_registry_with_recorded_fallbacks(tmp_path):
    store = LocalStore(tmp_path / "store")
    choices = resolve_checkpoints(None, store)
    assert all(c.source == "missing" and not c.available for c in choices.values())
    _publish(store, "lalrm_stage1", "20260101T000000Z-aaaaaaaa")
    assert resolve_checkpoints(None, store)["lalrm"].model == "lalrm_stage1"
    prefix = _publish(store, "lalrm_stage2", "20260102T000000Z-bbbbbbbb")
    lalrm = resolve_checkpoints(None, store)["lalrm"]  # stage 2 preferred once published
    assert (lalrm.source, lalrm.model, lalrm.uri) == ("registry", "lalrm_stage2", store.uri(prefix))
    assert lalrm.version == "20260102T000000Z-bbbbbbbb"
    folder = tmp_path / "my_prior"
    folder.mkdir()
    choices = resolve_checkpoints({"frame_stage1": str(folder), "lalrm": "none"}, store)
    assert choices["frame_stage1"].source == "flag" and choices["frame_stage1"].uri == str(folder)
    assert choices["lalrm"].source == "disabled" and not choices["lalrm"].available
    with pytest.raises(FileNotFoundError, match="no such export folder"):
        resolve_checkpoints({"frame_stage1": str(tmp_path / "nope")}, store)
    with pytest.raises(ValueError, match="unknown checkpoint roles"):
        resolve_checkpoints({"vae": "x"}, store)
    # nothing available: every role falls back, and says so
    built = build_models(resolve_checkpoints({"lalrm": "none"}, None),
                         GenerationOptions(size=32, device="cpu"))  # fmt: skip
    assert built.size == (32, 32) and len(built.fallbacks) == 3
    assert built.models.describe()["image_model"] == "analytic"
    assert built.models.aux_views is None and built.models.reconstructor is None
    assert "planar prior" in built.models.depth.name


def test_generate_with_a_random_tiny_stage1_prior(tmp_path):
    """The latent path: the stage-I export's PixArt + T5 + VAE sample each level in latent space."""
    from training.modules.frame_stage1 import ImagePriorModule

    torch.manual_seed(0)
    ImagePriorModule(size="tiny", vae={"size": "tiny"}).export_pretrained(tmp_path / "prior")
    image = torch.rand(3, 80, 96, generator=torch.Generator().manual_seed(1))
    options = GenerationOptions(
        levels=2, steps=4, device="cpu", backend="torch", fit_steps=1, refine_steps=5,
        frames_per_level=2, orbit_frames=2, fps=4.0,
    )  # fmt: skip
    manifest = generate(image, ["a valley", "a tree", "unused"], tmp_path / "world", options,
                        {"frame_stage1": str(tmp_path / "prior")}, None, "test")  # fmt: skip
    assert manifest["size"] == [64, 64]  # the tiny prior's native resolution
    assert manifest["checkpoints"]["frame_stage1"]["source"] == "flag"
    assert manifest["models"]["image_model"] == "frame_stage1"
    assert manifest["prompts"] == ["a valley", "a tree"] and manifest["num_levels"] == 2
    assert not any(f.startswith("frame_stage1") for f in manifest["fallbacks"])
    lv = manifest["levels"][1]
    assert lv["stats"]["registration"]["reliable_fraction"] > 0.5
    assert all(math.isfinite(v) for v in manifest["consistency_psnr_db"])
