"""The frame-model chain through Dagster: stage I → stage II → synthetic finetune → teacher pairs →
stage III → evaluation, with the tiny configs at 32×32 and 1–2 steps on a temporary home (a random
tiny image VAE is published directly instead of trained). Checks the registry names, the lineage
each stage starts from, previews, that the teacher pairs are deterministic and what stage III read,
and that the evaluation ran on the held-out shard set with the anchor baseline from its renders."""

import json
import math

import dagster as dg
import numpy as np
import pytest
import torch

from assets.frame_assets import (
    FrameTrainingConfig,
    frame_model_eval,
    frame_model_stage1,
    frame_model_stage2,
    frame_model_stage3,
    frame_model_synthetic_ft,
    imports_pretrained_prior,
    teacher_pairs,
)
from datagen.shards import manifest_key, read_clips, write_shard_set
from datagen.store import LocalStore
from models.autoencoders import build_image_vae
from orchestration.resources import artifact_store, training_launcher
from tests.fixtures.clips import make_clip
from training import registry
from training.modules.frame_stage1 import load_published_image_prior
from training.publish import fetch_published, publish_directory
from training.teacher_pairs import TeacherPairsSpec, build_teacher_pairs

S = 32
SMALL = ["--data.init_args.batch_size=2"]
PREVIEW = {"preview_count": 2, "preview_steps": 2, "device": "cpu"}
CONFIGS = {
    "frame_model_stage1": {
        "size": "tiny",
        "max_steps": 1,
        "overrides": [
            *SMALL,
            f"--data.init_args.task_config={{frames_per_clip: 2, height: {S}, width: {S}}}",
        ],
        **PREVIEW,
    },
    "frame_model_stage2": {"size": "tiny", "max_steps": 2, "overrides": SMALL, **PREVIEW},
    "frame_model_synthetic_ft": {"size": "tiny", "max_steps": 1, "overrides": SMALL, **PREVIEW},
    "teacher_pairs": {
        "num_pairs": 3,
        "steps": 2,
        "batch_size": 2,
        "targets_per_clip": 2,
        "device": "cpu",
    },
    "frame_model_stage3": {
        "size": "tiny",
        "max_steps": 2,
        "overrides": [*SMALL, "--model.init_args.regression_batch_size=2"],
        **PREVIEW,
    },
    "frame_model_eval": {"teacher_steps": 2, "max_clips": 2, "batch_size": 2, "device": "cpu"},
}
CHAIN = [
    frame_model_stage1,
    frame_model_stage2,
    frame_model_synthetic_ft,
    teacher_pairs,
    frame_model_stage3,
    frame_model_eval,
]


def test_chain_wiring_groups_pools_and_the_stage1_vae_rule():
    from orchestration.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    deps = {}
    for asset in CHAIN:
        (spec,) = asset.specs
        assert spec.group_name == "training" and asset.op.pool == "gpu" and spec.code_version
        assert spec.key.to_user_string() in keys and spec.description
        deps[spec.key.to_user_string()] = {d.asset_key.to_user_string() for d in spec.deps}
    assert {"image_vae", "synthetic_shards"} <= deps["frame_model_stage1"]
    assert {"frame_model_stage1", "image_vae", "real_shards"} <= deps["frame_model_stage2"]
    assert "frame_model_stage2" in deps["frame_model_synthetic_ft"]
    assert "frame_model_synthetic_ft" in deps["teacher_pairs"]
    assert {"frame_model_synthetic_ft", "teacher_pairs"} <= deps["frame_model_stage3"]
    assert deps["frame_model_eval"] == {"frame_model_stage3"}
    # stage I trains in image_vae's latent space unless it imports a prior with its own VAE
    assert not imports_pretrained_prior(FrameTrainingConfig(size="tiny"))
    assert imports_pretrained_prior(FrameTrainingConfig(size="paper"))
    pixart = ["--model.init_args.pretrained", "/models/pixart"]
    assert imports_pretrained_prior(FrameTrainingConfig(size="tiny", overrides=pixart))
    scratch = ["--model.init_args.pretrained=null"]
    assert not imports_pretrained_prior(FrameTrainingConfig(size="paper", overrides=scratch))


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A temp home: one synthetic shard set (2 clips, 32×32, 4 targets each) and a random tiny
    image VAE published as `image_vae` latest."""
    monkeypatch.setenv("WONDERFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    store = LocalStore(tmp_path / "home" / "store")
    clips = [make_clip(f"w0-{i}", num_frames=8, height=S, width=S, seed=i) for i in range(2)]
    write_shard_set(store, "shards/synthetic/w0", clips, "synthetic", "w0", progress=False)
    torch.manual_seed(0)
    build_image_vae("tiny").save_pretrained(tmp_path / "vae", safe_serialization=True)
    version = "20260101T000000Z-00000000"
    publish_directory(tmp_path / "vae", store, registry.version_prefix("image_vae", version), {})
    registry.promote_latest(store, "image_vae", version)
    return store


def metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key
    ]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


@pytest.mark.slow
def test_frame_chain_trains_distils_and_evaluates(home, tmp_path):
    def run(assets):
        return dg.materialize(
            assets,
            resources={"store": artifact_store, "launcher": training_launcher},
            run_config={
                "ops": {
                    a.key.to_user_string(): {"config": CONFIGS[a.key.to_user_string()]}
                    for a in assets
                },
                "resources": {"launcher": {"config": {"cpu_threads": 1, "report_every_s": 0.0}}},
            },
        )

    trained = run(CHAIN[:5])
    assert trained.success
    uris = {}
    for key, model in [
        ("frame_model_stage1", "frame_stage1"),
        ("frame_model_stage2", "frame_stage2"),
        ("frame_model_synthetic_ft", "frame_synthetic_ft"),
        ("frame_model_stage3", "frame_stage3"),
    ]:
        meta = metadata(trained, key)
        uris[model] = meta["uri"]
        assert registry.latest(home, model)["uri"] == meta["uri"]
        assert meta["preview"].startswith("![") and "data:image/png;base64," in meta["preview"]
        loss = meta["metrics"]["train/fake_loss" if model == "frame_stage3" else "train/loss"]
        assert meta["global_step"] >= 1 and math.isfinite(loss)
    assert (
        metadata(trained, "frame_model_synthetic_ft")["config"]
        == "frame_stage2/tiny_synthetic_ft.yaml"
    )
    # each stage started from its parent's published version (the lineage in the index)
    vae_uri = registry.latest(home, "image_vae")["uri"]
    index = {m: home.get_json(f"{registry.resolve(home, m)}/index.json") for m in uris}
    assert vae_uri in index["frame_stage1"]["inputs"]
    assert uris["frame_stage1"] in index["frame_stage2"]["inputs"]
    assert uris["frame_stage2"] in index["frame_synthetic_ft"]["inputs"]
    assert uris["frame_synthetic_ft"] in index["frame_stage3"]["inputs"]
    # teacher pairs: published, read by stage III, deterministic for the seed
    pairs = metadata(trained, "teacher_pairs")
    assert pairs["num_pairs"] == 3 and pairs["uri"] in index["frame_stage3"]["inputs"]
    assert index["frame_stage3"]["regression_pairs"] == 3
    assert index["frame_stage3"]["regression_pairs_source"] == "precomputed"
    stage3_config = home.get_json(f"{registry.resolve(home, 'frame_stage3')}/config.json")
    assert stage3_config["teacher_pairs"] == pairs["uri"] and stage3_config["timesteps"] == [
        999,
        200,
    ]
    teacher = fetch_published(home, registry.resolve(home, "frame_synthetic_ft"), tmp_path / "ft")
    spec = TeacherPairsSpec(num_pairs=3, steps=2, batch_size=2, targets_per_clip=2)
    from training.previews import torch_threads

    with torch_threads(1):  # the asset's cpu_threads: bit-identical needs the same reduction order
        _, again = build_teacher_pairs(teacher, home, ["shards/synthetic/w0"], spec)
    assert again["sha256"] == pairs["sha256"]
    assert pairs["preview"].startswith("![reference | anchor | teacher output]")
    # stage I is the zoom stack's text-to-image model: the documented loader
    prior, vae, text_encoder = load_published_image_prior(home)
    embeds, mask = text_encoder.encode(["a test scene"])
    x = torch.randn(1, 4, S // 8, S // 8)
    eps = prior.predict_eps(x, torch.tensor([500]), embeds, mask)
    assert eps.shape == x.shape and bool(torch.isfinite(eps).all())
    assert vae.config.latent_channels == 4

    # a shard set materialized after training is held out for the evaluation
    held = [make_clip("w1-0", num_frames=8, height=S, width=S, seed=9)]
    write_shard_set(home, "shards/synthetic/w1", held, "synthetic", "w1", progress=False)
    evaluated = run(CHAIN[5:])
    assert evaluated.success
    meta = metadata(evaluated, "frame_model_eval")
    assert meta["held_out"] is True
    assert meta["sets"] == [home.uri(manifest_key("shards/synthetic/w1"))]
    metrics = meta["metrics"]
    assert metrics["clips"] == 1 and metrics["frames"] == 4
    for name in ("anchor/psnr", "teacher/psnr", "generator/psnr", "generator/ssim"):
        assert math.isfinite(metrics[name])
    (clip,) = read_clips(home, "shards/synthetic/w1")
    anchors = np.where(clip.pcr_mask[..., None], clip.pcr_rgb, 0) / 255.0
    mse = ((anchors - clip.rgb[clip.target_idx] / 255.0) ** 2).mean((1, 2, 3))
    assert metrics["anchor/psnr"] == pytest.approx(float(np.mean(-10 * np.log10(mse))), abs=1e-3)
    version = registry.resolve(home, "frame_stage3").rsplit("/", 1)[1]
    report = home.get_json(f"evaluations/frame_model/{version}/report.json")
    assert meta["report"] == home.uri(f"evaluations/frame_model/{version}/report.json")
    assert report["metrics"] == metrics and report["held_out"] is True
    assert meta["preview"].startswith("![anchor | teacher | generator | ground truth]")
    assert json.loads(json.dumps(metrics)) == metrics
