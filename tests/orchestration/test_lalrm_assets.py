"""LaLRM assets through the real subprocess launcher: lalrm_stage1 -> lalrm_stage2 -> lalrm_eval
with tiny configs (2 steps each) on a temp home; stage 2 without generated sets trains on
benchmark clips and says so; with generated sets it mixes them in; hold-out rule."""

import json

import dagster as dg
import numpy as np
import pytest
import torch

from assets import lalrm_assets
from assets.lalrm_assets import lalrm_eval, lalrm_stage1, lalrm_stage2, split_holdout
from datagen.gaussian_files import read_ply
from datagen.shards import write_shard_set
from datagen.store import LocalStore
from datagen.video_io import read_mp4
from models.autoencoders import build_video_vae
from orchestration.resources import artifact_store, training_launcher
from tests.fixtures.clips import make_clip
from training import registry
from training.publish import publish_directory

TASK = "{num_context: 9, stride: 1, num_seen: 2, num_unseen: 2, height: 32, width: 32}"
TINY = {
    "size": "tiny",
    "max_steps": 2,
    "overrides": [f"--data.init_args.task_config={TASK}", "--data.init_args.batch_size=1"],
    "device": "cpu",
}
EVAL = {"max_clips": 1, "max_unseen": 2, "flythrough_frames": 4, "device": "cpu"}
LAUNCHER = {"config": {"cpu_threads": 1, "report_every_s": 0.0}}
RESOURCES = {"store": artifact_store, "launcher": training_launcher}


def values(event) -> dict:
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A temp home: two synthetic shard sets (w0: 2 clips, w1: 1 clip; 16 frames at 32x32) and a
    published random tiny video_vae promoted to latest."""
    monkeypatch.setenv("WONDERFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    store = LocalStore(tmp_path / "home" / "store")
    for name, n in (("w0", 2), ("w1", 1)):
        clips = [make_clip(f"{name}-{i}", 16, 32, 32, seed=i, with_extras=False) for i in range(n)]
        write_shard_set(store, f"shards/synthetic/{name}", clips, "synthetic", name, progress=False)
    torch.manual_seed(0)
    vae_dir = tmp_path / "vae"
    build_video_vae("tiny").save_pretrained(vae_dir, safe_serialization=True)
    publish_directory(vae_dir, store, "checkpoints/video_vae/v0", {"inputs": []})
    registry.promote_latest(store, "video_vae", "v0")
    return store


def test_holdout_keeps_the_last_sets_but_never_all():
    assert split_holdout(["a", "b", "c"], 1) == (["a", "b"], ["c"])
    assert split_holdout(["a", "b", "c"], 5) == (["a"], ["b", "c"])
    assert split_holdout(["a"], 1) == (["a"], [])
    assert split_holdout(["a", "b"], 0) == (["a", "b"], [])
    with pytest.raises(ValueError, match="holdout_sets"):
        split_holdout(["a"], -1)


@pytest.mark.slow
def test_stage1_stage2_eval_chain(home):
    """Two real training subprocesses (about 20 s each, mostly imports) + previews + eval."""
    result = dg.materialize(
        [lalrm_stage1, lalrm_stage2, lalrm_eval],
        resources=RESOURCES,
        run_config={
            "ops": {
                "lalrm_stage1": {"config": TINY},
                "lalrm_stage2": {"config": {**TINY, "preview": False}},
                "lalrm_eval": {"config": EVAL},
            },
            "resources": {"launcher": LAUNCHER},
        },
        raise_on_error=False,
    )
    assert result.success
    events = {
        e.asset_key.to_user_string(): values(e) for e in result.get_asset_materialization_events()
    }
    w0, w1 = (home.uri(f"shards/synthetic/{n}/manifest.json") for n in ("w0", "w1"))
    vae_uri = home.uri("checkpoints/video_vae/v0")

    s1 = events["lalrm_stage1"]
    stage1 = registry.resolve(home, "lalrm_stage1")
    assert s1["uri"] == home.uri(stage1) and s1["config"] == "lalrm/tiny.yaml"
    assert s1["inputs"] == [w0, vae_uri] and s1["held_out_sets"] == [w1]
    assert s1["global_step"] == 2 and np.isfinite(s1["loss"])
    assert s1["preview"].startswith("![ground truth / renders") and 0 < s1["preview_psnr"] < 60
    index1 = home.get_json(f"{stage1}/index.json")
    assert index1["model"] == "lalrm_stage1" and index1["stage"] == 1 and index1["upsample"] == 16

    s2 = events["lalrm_stage2"]
    stage2 = registry.resolve(home, "lalrm_stage2")
    assert s2["config"] == "lalrm/tiny_stage2.yaml" and s2["init_from"] == home.uri(stage1)
    assert s2["generated_sets"] == [] and s2["generated_data"].startswith("no generated set")
    assert s2["inputs"] == [w0, home.uri(stage1), vae_uri] and "preview" not in s2
    index2 = home.get_json(f"{stage2}/index.json")
    assert index2["stage"] == 2 and index2["upsample"] == 8 and index2["global_step"] == 2

    ev = events["lalrm_eval"]
    assert ev["held_out"] is True and ev["sets"] == [w1] and ev["model"] == "lalrm_stage2"
    assert ev["checkpoint_uri"] == home.uri(stage2) and ev["scene_clip"] == "w1-0"
    assert ev["clips"] == 1 and ev["unseen_views"] == 2
    assert 0 < ev["unseen/psnr"] < 60 and -1 <= ev["unseen/ssim"] <= 1
    assert "| w1-0 | 2 |" in ev["table"] and ev["preview"].startswith("![ground truth")
    prefix = ev["ply_uri"].removeprefix(home.uri("")).rsplit("/", 1)[0].lstrip("/")
    assert ev["flythrough_uri"] == home.uri(f"{prefix}/flythrough.mp4")
    ply = read_ply(home.root / prefix / "scene.ply")
    assert len(ply) == ev["gaussians_written"] > 0
    assert read_mp4(home.root / prefix / "flythrough.mp4").shape == (4, 32, 32, 3)
    report = home.get_json(f"{prefix}/results.json")
    assert report["held_out"] is True and report["metrics"]["unseen/psnr"] == pytest.approx(
        ev["unseen/psnr"], abs=1e-4
    )


def test_stage2_mixes_in_published_generated_sets(home, tmp_path, monkeypatch):
    """Without launching: the stage-2 run gets the generated sets, the stage-1 export and the
    stage-2 YAML (``train`` is replaced by a recorder)."""
    folder = tmp_path / "s1"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    publish_directory(folder, home, "checkpoints/lalrm_stage1/v1", {})
    registry.promote_latest(home, "lalrm_stage1", "v1")
    gen = [make_clip("gen-0", 9, 32, 32, seed=3, with_extras=False)]
    write_shard_set(home, "shards/generated/b0", gen, "generated", "b0", progress=False)
    calls = []

    def fake_train(context, config, store, launcher, model, manifests, **kwargs):
        calls.append({"model": model, "manifests": manifests, **kwargs})
        return type("Run", (), {"version": "v2"})(), {}, {"version": "v2"}

    monkeypatch.setattr(lalrm_assets, "train", fake_train)
    result = dg.materialize(
        [lalrm_stage2],
        resources=RESOURCES,
        run_config={
            "ops": {"lalrm_stage2": {"config": {**TINY, "preview": False}}},
            "resources": {"launcher": LAUNCHER},
        },
    )
    (call,) = calls
    generated = home.uri("shards/generated/b0/manifest.json")
    stage1 = home.uri("checkpoints/lalrm_stage1/v1")
    assert call["model"] == "lalrm_stage2" and call["config_file"] == ("lalrm", "tiny_stage2")
    assert call["manifests"] == [home.uri("shards/synthetic/w0/manifest.json")]
    args = call["extra_args"]
    assert f"--model.init_args.init_from={stage1}" in args
    assert f"--data.init_args.mix_sets={json.dumps([generated])}" in args
    assert not any("mix_ratio" in a for a in args)  # the config's ratio applies
    assert call["lineage"][0] == stage1 and call["lineage"][-1] == generated
    (event,) = result.get_asset_materialization_events()
    meta = values(event)
    assert meta["generated_sets"] == [generated] and meta["generated_data"].startswith(
        "1 generated"
    )


SHARDED = (
    '--trainer.strategy={"class_path": "training.sharding.ShardedStrategy", "init_args": '
    '{"auto_wrap_policy": "training.sharding.lalrm_wrap_policy", "state_dict_type": "full"}}'
)


@pytest.mark.gpu
def test_sharded_stage1_on_every_gpu_publishes_an_export_that_evaluates(home):
    """The paper_fsdp path on the node's GPUs: ``lalrm_stage1`` through torchrun with Lightning
    FSDP (``ShardedStrategy``, one unit per block, bf16-mixed); the export consolidated on rank 0
    is published and ``lalrm_eval`` loads and evaluates it."""
    gpus = torch.cuda.device_count()
    if gpus < 2:
        pytest.skip("needs 2 or more CUDA devices")
    sharded = {
        **TINY,
        "device": "cuda",
        "overrides": [*TINY["overrides"], SHARDED, "--trainer.precision=bf16-mixed"],
    }
    result = dg.materialize(
        [lalrm_stage1, lalrm_eval],
        resources=RESOURCES,
        run_config={
            "ops": {
                "lalrm_stage1": {"config": sharded},
                "lalrm_eval": {"config": {**EVAL, "device": "cuda", "model": "lalrm_stage1"}},
            },
            "resources": {"launcher": {"config": {**LAUNCHER["config"], "gpus": gpus}}},
        },
        raise_on_error=False,
    )
    assert result.success
    events = {
        e.asset_key.to_user_string(): values(e) for e in result.get_asset_materialization_events()
    }
    s1 = events["lalrm_stage1"]
    assert s1["global_step"] == 2 and np.isfinite(s1["loss"])
    version = registry.resolve(home, "lalrm_stage1").rsplit("/", 1)[-1]
    log = (home.root.parent / "runs" / "lalrm_stage1" / version / "train.log").read_text()
    assert f"Starting with {gpus} processes" in log
    ev = events["lalrm_eval"]
    assert ev["model"] == "lalrm_stage1" and 0 < ev["unseen/psnr"] < 60
