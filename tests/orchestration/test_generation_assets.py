"""generated_videos -> generated_shards (per `generation_batches` partition) and video_model_eval
materialize on a temporary home against a tiny published camera_video_model; the definitions
register them and the `generate_videos` job."""

import dagster as dg
import numpy as np
import pytest
import torch

from assets.generation import generated_shards, generated_videos, video_model_eval
from assets.partitions import GENERATION_BATCHES
from datagen.shards import published_sets, read_clips, write_shard_set
from datagen.store import LocalStore
from datagen.video_io import read_mp4
from datagen.worlds import WorldSpec
from datagen.worlds.catalog import save_spec
from orchestration.resources import artifact_store
from tests.fixtures.clips import make_clip
from tests.training.test_video_evaluation import S, tiny_module
from training.publish import publish_directory
from training.registry import promote_latest, version_prefix

F = 9
QUICK = {"steps": 2, "guidance_scale": 2.0, "device": "cpu"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """A random tiny camera video model (32x32, 9 frames) exported once per module."""
    out = tmp_path_factory.mktemp("camera") / "export"
    tiny_module().export_pretrained(out)
    return out


@pytest.fixture
def home(tmp_path, monkeypatch, export_dir) -> LocalStore:
    """A temp home whose store holds the published model (trained on the synthetic set w0), the
    synthetic set w0, a held-out real set v0 and one registered world."""
    monkeypatch.setenv("WONDERFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    store = LocalStore(tmp_path / "home" / "store")
    clip = make_clip("w0-0", num_frames=F, height=S, width=S, seed=0)
    write_shard_set(store, "shards/synthetic/w0", [clip], "synthetic", "w0", progress=False)
    real = [make_clip(f"v0-{i}", num_frames=F, height=S, width=S, seed=i) for i in range(2)]
    write_shard_set(store, "shards/real/v0", real, "real", "v0", progress=False)
    prefix = version_prefix("camera_video_model", "v1")
    inputs = [store.uri("shards/synthetic/w0/manifest.json")]
    publish_directory(export_dir, store, prefix, {"inputs": inputs, "metrics": {}})
    promote_latest(store, "camera_video_model", "v1")
    save_spec(store, WorldSpec("tabletop", 0))
    return store


def _metadata(event) -> dict:
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def _materialize_batch(config: dict, batch: str = "b0") -> dg.ExecuteInProcessResult:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(GENERATION_BATCHES.name, [batch])
    return dg.materialize(
        [generated_videos, generated_shards],
        partition_key=batch,
        instance=instance,
        resources={"store": artifact_store},
        run_config={"ops": {"generated_videos": {"config": config}}},
        raise_on_error=False,
    )


def test_generated_videos_and_shards_from_world_renders(home):
    result = _materialize_batch({"num_videos": 2, "templates": ["pan", "truck"], **QUICK})
    assert result.success
    videos, shards = result.get_asset_materialization_events()
    meta = _metadata(videos)
    uri = home.uri("checkpoints/camera_video_model/v1")
    assert meta["videos"] == 2 and meta["frames"] == 2 * F and meta["source"] == "worlds"
    assert meta["checkpoint_uri"] == uri
    assert meta["settings"]["steps"] == 2 and meta["settings"]["num_frames"] == F
    assert meta["preview"].startswith("![condition | generated frames](data:image/png;base64,")
    assert len(meta["video_uris"]) == 2 and len(meta["latents_uris"]) == 2
    video = read_mp4(home.root / "generated/b0/b0-00000/video.mp4")
    assert video.shape == (F, S, S, 3)

    meta = _metadata(shards)
    assert meta["samples"] == 2 and meta["shards"] == 1
    assert meta["uri"] == home.uri("shards/generated/b0/manifest.json")
    assert meta["generator_checkpoints"] == [uri]
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == "shard_integrity"
    assert published_sets(home, "shards/generated") == ["shards/generated/b0"]
    clips = list(read_clips(home, "shards/generated/b0"))
    assert [c.provenance.extra["template"] for c in clips] != [None, None]
    for c in clips:
        assert c.provenance.source_kind == "generated" and c.provenance.generator_checkpoint == uri
        assert c.provenance.extra["kind"] == "world" and c.latents.shape == (8, 3, 4, 4)
        assert c.provenance.scene_id == WorldSpec("tabletop", 0).world_id


def test_generated_videos_from_image_files(home, tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "room.png")
    config = {"num_videos": 1, "source": "images", "images": [str(tmp_path / "room.png")], **QUICK}
    result = _materialize_batch(config, "user-1")
    assert result.success
    (clip,) = read_clips(home, "shards/generated/user-1")
    assert clip.provenance.scene_id == "room.png" and clip.provenance.extra["kind"] == "image"

    bad = {**config, "images": [str(tmp_path / "nope.png")]}
    result = _materialize_batch(bad, "user-2")
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    while error.cause is not None and "nope.png" not in error.message:
        error = error.cause
    assert "conditioning image" in error.message and "nope.png" in error.message


def test_generated_videos_from_an_image_prior(home, tmp_path):
    from training.modules.frame_stage1 import ImagePriorModule

    torch.manual_seed(0)
    ImagePriorModule(size="tiny").export_pretrained(tmp_path / "prior")
    prompts = ["a red room", "a garden"]
    config = {
        "num_videos": 3,
        "source": "image_prior",
        "image_prior": str(tmp_path / "prior"),
        "prompts": prompts,
        **QUICK,
    }
    assert _materialize_batch(config, "prior-1").success
    clips = list(read_clips(home, "shards/generated/prior-1"))
    assert [c.caption for c in clips] == [*prompts, prompts[0]]
    assert {c.provenance.extra["kind"] for c in clips} == {"image_prior"}
    assert not _materialize_batch({**config, "prompts": []}, "prior-2").success


def test_video_model_eval_on_held_out_sets(home):
    result = dg.materialize(
        [video_model_eval],
        resources={"store": artifact_store},
        run_config={
            "ops": {"video_model_eval": {"config": {"max_clips": 2, "steps": 2, "device": "cpu"}}}
        },
    )
    (event,) = result.get_asset_materialization_events()
    meta = _metadata(event)
    assert meta["held_out"] is True  # the synthetic set trained the model: only v0 is used
    assert meta["sets"] == [home.uri("shards/real/v0/manifest.json")]
    assert meta["clips"] == 2 and np.isfinite(meta["psnr"]) and np.isfinite(meta["ssim"])
    assert meta["sfm_attempts"] == 2 and meta["sfm_failures"] == 2
    assert "rot_err_deg" not in meta  # no registered video, no camera error
    assert meta["table"].count("failed") == 2 and meta["version"] == "v1"
    assert meta["preview"].startswith("![ground truth / generated")
    results = home.get_json(meta["uri"][len(home.uri()) + 1 :])
    assert results["metrics"]["clips"] == 2 and results["held_out"] is True


def test_definitions_register_the_assets_and_the_job():
    from orchestration.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"generated_videos", "generated_shards", "video_model_eval"} <= keys
    job = defs.resolve_job_def("generate_videos")
    assert job.partitions_def == GENERATION_BATCHES
    groups = {
        "video_model_eval": "training",
        "generated_videos": "data",
        "generated_shards": "data",
    }
    for name, group in groups.items():
        asset = defs.resolve_assets_def(name)
        assert asset.specs_by_key[dg.AssetKey(name)].group_name == group
        assert asset.op.pool == (None if name == "generated_shards" else "gpu")


def test_eval_set_selection_prefers_held_out_sets(tmp_path):
    import logging

    from assets.generation import VideoModelEvalConfig, _eval_sets

    store = LocalStore(tmp_path / "store")
    log = logging.getLogger("test")
    config = VideoModelEvalConfig()
    with pytest.raises(ValueError, match="no published shard set"):
        _eval_sets(config, store, [], log)
    clip = make_clip("w0-0", num_frames=F, height=S, width=S)
    write_shard_set(store, "shards/synthetic/w0", [clip], "synthetic", "w0", progress=False)
    trained = [store.uri("shards/synthetic/w0/manifest.json")]
    assert _eval_sets(config, store, [], log) == (trained, True)
    assert _eval_sets(config, store, trained, log) == (trained, False)  # flagged fallback
    strict = VideoModelEvalConfig(allow_training_sets=False)
    with pytest.raises(ValueError, match="all 1 published sets"):
        _eval_sets(strict, store, trained, log)
    given = VideoModelEvalConfig(shard_sets=["file:///x/manifest.json"])
    assert _eval_sets(given, store, trained, log) == (["file:///x/manifest.json"], True)
