"""LaLRM evaluation and inference with files: unseen-view selection, metrics on a tiny
checkpoint (published, context from its run config, VAE fallback), held-out sets from lineage,
and the inference CLI writing .ply / .splat / fly-through mp4 from shards and from a
generated-video folder."""

import json

import numpy as np
import pytest
import torch
import yaml

from datagen.gaussian_files import read_ply, read_splat
from datagen.shards import write_shard_set
from datagen.store import LocalStore
from datagen.video_io import read_mp4, save_video_sample
from models.autoencoders import build_video_vae, encode
from tests.fixtures.clips import make_clip
from training import lalrm_infer, registry
from training.evaluation.common import (
    checkpoint_lineage,
    held_out,
    iter_clips,
    markdown_table,
    mean_color_baseline,
    psnr,
)
from training.evaluation.lalrm import (
    LaLRMEvalConfig,
    evaluate_lalrm,
    evaluate_published,
    metrics_table,
    unseen_views,
)
from training.modules.lalrm import LaLRMModule
from training.publish import publish_directory

S = 32


pytestmark = pytest.mark.usefixtures("one_thread")


def clips(n: int = 2, frames: int = 16):
    return [make_clip(f"c{i}", frames, S, S, seed=i, with_extras=False) for i in range(n)]


@pytest.fixture(scope="module")
def module():
    torch.manual_seed(0)
    m = LaLRMModule(size="tiny", vae={"size": "tiny"}, perceptual="none").eval()
    with torch.no_grad():  # brighter, more opaque start than the initialisation
        m.model.decoder.deconv.bias[10] += 3.0
    return m


def test_unseen_views_inside_the_coverage_else_outside():
    idx, kind = unseen_views(16, np.arange(0, 9, 2), max_unseen=3)  # context 0, 2, ..., 8
    assert kind == "inside" and idx.tolist() == [1, 5, 7]  # 3 evenly spaced of 1, 3, 5, 7
    idx, kind = unseen_views(16, np.arange(9), max_unseen=4)
    assert kind == "outside" and idx.tolist() == [9, 11, 13, 15]
    idx, kind = unseen_views(9, np.arange(9), max_unseen=4)
    assert kind == "none" and len(idx) == 0


def test_evaluation_returns_sane_metrics(module):
    cfg = LaLRMEvalConfig(num_context=5, stride=2, max_unseen=3, max_clips=2)
    result = evaluate_lalrm(module, clips(3), cfg, progress=False)
    m = result.metrics
    assert m["clips"] == 2 and m["skipped_clips"] == 0 and m["unseen_views"] == 6
    for key in ("unseen/psnr", "seen/psnr", "unseen/psnr_mean_color"):
        assert 3 < m[key] < 40, (key, m[key])
    for key in ("unseen/ssim", "seen/ssim"):
        assert -1 <= m[key] <= 1, (key, m[key])
    assert "unseen/lpips" not in m  # no LPIPS weights given
    rows = result.clips
    assert [r["key"] for r in rows] == ["c0", "c1"] and all(
        r["unseen_kind"] == "inside" for r in rows
    )
    assert all(r["gaussians"] == 5 * S * S and r["latents"] == "vae" for r in rows)
    assert m["unseen/psnr"] == pytest.approx(np.mean([r["unseen/psnr"] for r in rows]))
    # the preview: 2 clips x (ground truth row, render row) of 3 tiles of 96 px
    assert result.preview.dtype == np.uint8 and result.preview.shape[0] == 4 * 98 + 2
    assert result.scene["means"].shape == (1, 5 * S * S, 3) and result.context.key == "c0"
    table = metrics_table(result)
    assert table.count("\n") == 4 and "| **mean** | 6 |" in table and "LPIPS" not in table

    # the same metric code on a perfect and a trivial prediction
    target = torch.rand(2, 3, 8, 8)
    assert torch.all(psnr(target, target) == 100.0)
    assert torch.all(psnr(mean_color_baseline(target), target) < 15)
    with pytest.raises(ValueError, match="no clip to evaluate: 1 clip"):
        evaluate_lalrm(module, clips(1, frames=8), LaLRMEvalConfig(num_context=9), progress=False)


def test_evaluate_published_uses_the_run_config_and_the_lineage_vae(tmp_path, module):
    store = LocalStore(tmp_path / "store")
    write_shard_set(store, "shards/synthetic/a", clips(1), "synthetic", "a", progress=False)
    vae_dir = tmp_path / "vae"
    torch.manual_seed(1)
    build_video_vae("tiny").save_pretrained(vae_dir, safe_serialization=True)
    publish_directory(vae_dir, store, "checkpoints/video_vae/v1", {})
    m = LaLRMModule(size="tiny", vae=str(vae_dir), perceptual="none")
    export = tmp_path / "export"
    m.export_pretrained(export)
    task = {"num_context": 5, "stride": 3, "num_seen": 2, "num_unseen": 2, "height": 16}
    (export / "run_config.yaml").write_text(
        yaml.safe_dump({"data": {"init_args": {"task_config": task}}})
    )
    vae_uri = store.uri("checkpoints/video_vae/v1")
    publish_directory(export, store, "checkpoints/lalrm_stage1/v1", {"inputs": ["x", vae_uri]})
    # the VAE path recorded at training is gone: the lineage's video_vae URI replaces it
    for f in vae_dir.iterdir():
        f.unlink()
    vae_dir.rmdir()
    sets = [store.uri("shards/synthetic/a/manifest.json")]
    result = evaluate_published(store, "checkpoints/lalrm_stage1/v1", sets, {"max_unseen": 2})
    assert result.config["num_context"] == 5 and result.config["stride"] == 3
    assert result.config["height"] == 16 and result.context.frames.shape == (5, 3, 16, 16)
    assert result.metrics["unseen_views"] == 2 and result.clips[0]["unseen_kind"] == "inside"


def test_held_out_sets_follow_the_lineage(tmp_path):
    store = LocalStore(tmp_path / "store")
    for name in ("a", "b"):
        write_shard_set(
            store, f"shards/synthetic/{name}", clips(1), "synthetic", name, progress=False
        )
    a, b = (store.uri(f"shards/synthetic/{n}/manifest.json") for n in "ab")
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "w").write_text("1")
    publish_directory(folder, store, "checkpoints/lalrm_stage1/v1", {"inputs": [a]})
    publish_directory(folder, store, "checkpoints/video_vae/v1", {"inputs": [a, b]})
    stage1 = store.uri("checkpoints/lalrm_stage1/v1")
    vae = store.uri("checkpoints/video_vae/v1")
    index = {"inputs": [stage1, vae]}
    trained = checkpoint_lineage(index, follow=("lalrm_stage1",))
    assert trained == {stage1, vae, a}  # the VAE's own training sets are not followed
    assert held_out([a, b], trained) == ([b], True)
    assert held_out([a], trained) == ([a], False)
    assert [c.key for _, c in iter_clips([a, store.uri("shards/synthetic/b")], max_clips=3)] == [
        "c0",
        "c0",
    ]
    table = markdown_table(
        [{"k": "x", "v": 1.23456}, {"k": "y"}], [("k", "K", "s"), ("v", "V", ".2f")]
    )
    assert table.splitlines()[2:] == ["| x | 1.23 |", "| y | – |"]


def test_inference_cli_writes_scene_files_from_shards_and_from_a_video_folder(
    tmp_path, module, monkeypatch
):
    store = LocalStore(tmp_path / "store")
    monkeypatch.setenv("WONDERFORGE_STORE", str(store.root))
    write_shard_set(
        store, "shards/synthetic/a", clips(2, frames=9), "synthetic", "a", progress=False
    )
    module.export_pretrained(tmp_path / "export")  # random VAE: embedded as vae/
    publish_directory(tmp_path / "export", store, "checkpoints/lalrm_stage1/v1", {})
    registry.promote_latest(store, "lalrm_stage1", "v1")

    out = tmp_path / "scene"
    manifest = store.uri("shards/synthetic/a/manifest.json")
    paths = lalrm_infer.main(
        ["--shards", manifest, "--clip", "1", "--frames", "6", "--out", str(out)]
    )
    assert set(paths) == {"ply", "splat", "flythrough", "context", "meta"}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["key"] == "c1" and meta["gaussians"] == 9 * S * S
    assert meta["checkpoint"]["model"] == "lalrm_stage1"  # no stage 2 published: stage 1
    n = meta["gaussians_written"]
    assert 0 < n <= meta["gaussians"] and len(read_ply(out / "scene.ply")) == n
    assert len(read_splat(out / "scene.splat")) == n
    video = read_mp4(out / "flythrough.mp4")
    assert video.shape == (6, S, S, 3) and video.mean() > 5  # not black
    assert not list(out.glob(".*"))  # no temp files left

    # a generated-video folder: stored latents and cameras in meta.json
    cams = make_clip("g", 9, S, S, seed=5, with_extras=False)
    frames = torch.from_numpy(cams.rgb).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        latents = encode(module.vae, frames[None])[0]
    sample = tmp_path / "video"
    save_video_sample(
        sample, frames, latents, meta={"K": cams.K.tolist(), "c2w": cams.c2w.tolist()}
    )
    paths = lalrm_infer.main(
        ["--checkpoint", str(tmp_path / "export"), "--sample", str(sample), "--frames", "4",
         "--min-opacity", "0.5", "--out", str(tmp_path / "s2")]
    )  # fmt: skip
    meta = json.loads((tmp_path / "s2" / "meta.json").read_text())
    assert meta["gaussians"] == 9 * S * S and meta["min_opacity"] == 0.5
    cloud = read_ply(paths["ply"])
    assert len(cloud) == meta["gaussians_written"] and (cloud.opacities >= 0.5 - 1e-5).all()
    with pytest.raises(IndexError, match="no clip 5 \\(the set holds 2\\)"):
        lalrm_infer.main(["--shards", manifest, "--clip", "5", "--out", str(tmp_path / "x")])
