"""Video-model evaluation (Wonderland §4.1): PSNR/SSIM, SfM camera errors relative to frame 0 and
scale-normalised, SfM failures counted, held-out windows from shard sets, the CLI."""

import json

import numpy as np
import pytest
import torch
import yaml

from datagen.camera_formats import CameraSet
from datagen.ingest.sfm import SfmError, SfmResult
from datagen.shards import write_shard_set
from datagen.store import LocalStore
from models.geometry import look_at
from tests.fixtures.clips import make_clip
from training.cli import config_path
from training.evaluation.video_model import (
    PSNR_MAX_DB,
    EvalClip,
    VideoEvalConfig,
    evaluate_camera_video_model,
    evaluate_videos,
    evaluation_clips,
    main,
    psnr_ssim,
    sfm_camera_errors,
)
from training.modules.video_model import CameraVideoModule

S, F = 32, 9


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_module(seed: int = 0) -> CameraVideoModule:
    """The tiny YAML's architecture at 32x32 (random weights)."""
    kwargs = yaml.safe_load(config_path("camera_video_model", "tiny").read_text())["model"][
        "init_args"
    ]
    kwargs["base_config"].update(sample_width=S // 8, sample_height=S // 8)
    kwargs["vae"].update(sample_width=S, sample_height=S)
    torch.manual_seed(seed)
    return CameraVideoModule(**kwargs).eval()


def path(n: int = F) -> np.ndarray:
    """``[n, 4, 4]`` float64 arc looking at the origin."""
    a = torch.linspace(-0.5, 0.5, n, dtype=torch.float64)
    eye = torch.stack([3 * torch.sin(a), 0.3 * a, -3 * torch.cos(a)], -1)
    up = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64).expand_as(eye)
    return look_at(eye, torch.zeros_like(eye), up).numpy()


def similarity(c2w: np.ndarray, scale: float, seed: int = 0) -> np.ndarray:
    """The same cameras in another world frame: x -> s R x + t (what SfM returns)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    R = q * np.sign(np.linalg.det(q))
    out = c2w.copy()
    out[:, :3, :3] = R @ c2w[:, :3, :3]
    out[:, :3, 3] = scale * (c2w[:, :3, 3] @ R.T) + rng.normal(size=3)
    return out


class FakeEstimator:
    """Returns given cameras for the frames in ``registered`` (or raises SfmError)."""

    name = "fake"

    def __init__(self, c2w=None, registered=None, error=None):
        self.c2w, self.registered, self.error = c2w, registered, error
        self.known = None

    def estimate(self, frames, timestamps=None, known=None):
        self.known = known
        if self.error:
            raise SfmError(self.error)
        n = len(frames)
        reg = np.ones(n, bool) if self.registered is None else np.asarray(self.registered)
        idx = np.flatnonzero(reg)
        K = np.repeat(np.eye(3)[None], len(idx), 0)
        K[:, 0, 0] = K[:, 1, 1] = 30.0
        cams = CameraSet([f"{i}" for i in idx], K, self.c2w[idx], frames.shape[1], frames.shape[2])
        return SfmResult(cams, reg, np.zeros((0, 3)), np.zeros((0, 3), np.uint8), {}, self.name)


def test_psnr_and_ssim_values():
    x = torch.rand(3, 3, 24, 24, generator=torch.Generator().manual_seed(0)) * 0.8
    psnr, sim = psnr_ssim(x, x)
    assert psnr.tolist() == [PSNR_MAX_DB] * 3 and torch.allclose(sim, torch.ones(3))
    psnr, sim = psnr_ssim(x + 0.1, x)
    torch.testing.assert_close(psnr, torch.full((3,), 20.0), atol=1e-4, rtol=0)  # -10 log10 0.01
    assert (sim < 1).all() and (sim > 0.5).all()
    with pytest.raises(ValueError, match="generated"):
        psnr_ssim(x[:2], x)


def test_sfm_errors_are_relative_and_scale_free():
    gt = path()
    frames = np.zeros((F, S, S, 3), np.uint8)
    K = np.repeat(np.eye(3)[None], F, 0)
    est = FakeEstimator(similarity(gt, scale=3.7))
    out = sfm_camera_errors(frames, K, gt, est, pose_frames=16)
    assert out["status"] == "ok" and out["registered"] == F and out["pose_frames_used"] == F
    assert out["rot_err_deg"] < 1e-6 and out["trans_err"] < 1e-6
    np.testing.assert_array_equal(est.known.K, K)  # SfM is seeded with the known intrinsics
    # a wrong rotation on one frame shows in R_err: 3 degrees on 1 of 5 used frames
    bad = similarity(gt, 2.0)
    turn = np.eye(4)
    turn[:3, :3] = torch.linalg.matrix_exp(
        torch.tensor([[0, -1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.float64) * np.radians(3)
    ).numpy()
    bad[2] = bad[2] @ turn
    out = sfm_camera_errors(frames, K, gt, FakeEstimator(bad), pose_frames=5)
    assert out["pose_frames_used"] == 5
    assert out["rot_err_deg"] == pytest.approx(3.0 / 5, abs=1e-6)
    # unregistered frames are left out; frame 0 is required
    reg = np.array([1, 0, 1, 1, 0, 1, 1, 1, 1], bool)
    out = sfm_camera_errors(frames, K, gt, FakeEstimator(similarity(gt, 1.0), reg), 16)
    assert out["status"] == "ok" and out["registered"] == 7 and out["trans_err"] < 1e-6
    out = sfm_camera_errors(frames, K, gt, FakeEstimator(gt, ~reg), 16)
    assert out == {
        "status": "failed",
        "reason": "frame 0 not registered among the first 16",
        "registered": 2,
    }
    out = sfm_camera_errors(frames, K, gt, FakeEstimator(error="SfM registered none\nmore"), 16)
    assert out == {"status": "failed", "reason": "SfM registered none", "registered": 0}


def test_evaluate_videos_oracle_and_failures():
    gt = path()
    frames = torch.rand(F, 3, S, S, generator=torch.Generator().manual_seed(1))
    K = torch.eye(3).expand(F, 3, 3)
    clips = [EvalClip(f"c{i}", "set", frames, K, torch.from_numpy(gt).float()) for i in range(2)]
    seeds = []

    def oracle(clip, seed):
        seeds.append(seed)
        return clip.frames

    cfg = VideoEvalConfig(seed=5, similarity_frames=4)
    result = evaluate_videos(oracle, clips, cfg, FakeEstimator(similarity(gt, 2.0)), progress=False)
    assert seeds == [5, 6]
    m = result.metrics
    assert m["clips"] == 2 and m["psnr"] == PSNR_MAX_DB and m["ssim"] == pytest.approx(1.0)
    assert m["sfm_attempts"] == 2 and m["sfm_failures"] == 0
    assert m["rot_err_deg"] < 1e-4 and m["trans_err"] < 1e-4  # float32 conditioning poses
    assert result.clips[0]["similarity_frames"] == 4
    assert result.preview.shape[0] == 4 * 96 + 5 * 2  # 2 clips x (GT row, generated row)

    failing = FakeEstimator(error="no model")
    result = evaluate_videos(lambda c, s: c.frames * 0.5, clips, cfg, failing, progress=False)
    m = result.metrics
    assert m["sfm_failures"] == 2 and m["rot_err_deg"] is None and m["trans_err"] is None
    assert 0 < m["psnr"] < 20 and np.isfinite(m["ssim"])
    result = evaluate_videos(lambda c, s: c.frames, clips, cfg, None, progress=False)
    assert result.metrics["sfm_attempts"] == 0 and "sfm" not in result.clips[0]
    with pytest.raises(ValueError, match="clip c0: generated"):
        evaluate_videos(lambda c, s: c.frames[:5], clips, cfg, None, progress=False)


@pytest.fixture
def shard_set(tmp_path) -> str:
    store = LocalStore(tmp_path / "store")
    clips = [make_clip(f"c{i}", num_frames=F + 2, height=48, width=40, seed=i) for i in range(3)]
    clips.append(make_clip("short", num_frames=5, height=48, width=40, seed=9))
    write_shard_set(store, "shards/real/v0", clips, "real", "v0", progress=False)
    return store.uri("shards/real/v0/manifest.json")


def test_evaluation_windows_are_resized_relative_and_skip_short_clips(shard_set):
    clips = evaluation_clips([shard_set], F, S, S, 1, max_clips=10)
    assert [c.key for c in clips] == ["c0", "c1", "c2"]  # "short" has 5 frames
    c = clips[0]
    assert c.frames.shape == (F, 3, S, S) and c.set_uri == shard_set
    torch.testing.assert_close(c.c2w[0], torch.eye(4))
    assert c.K[0, 0, 2] == pytest.approx(S / 2)  # cx scaled from 40 to 32 px wide
    assert len(evaluation_clips([shard_set], F, S, S, 1, max_clips=2)) == 2
    with pytest.raises(ValueError, match="needs"):
        evaluation_clips([shard_set], F, S, S, stride=3, max_clips=2)


def test_tiny_model_evaluation_counts_sfm_failures(shard_set):
    module = tiny_module()
    cfg = VideoEvalConfig(max_clips=2, steps=2, guidance_scale=2.0)
    result = evaluate_camera_video_model(module, [shard_set], cfg, progress=False)
    m = result.metrics
    assert m["clips"] == 2 and np.isfinite(m["psnr"]) and 0 < m["psnr"] < PSNR_MAX_DB
    assert np.isfinite(m["ssim"]) and -1 <= m["ssim"] <= 1
    # real pycolmap on 32x32 noise-like frames of a random model: registers nothing, recorded
    assert m["sfm_attempts"] == 2 and m["sfm_failures"] == 2 and m["rot_err_deg"] is None
    assert all(c["sfm"]["status"] == "failed" and c["sfm"]["reason"] for c in result.clips)
    assert result.config["num_frames"] == F and result.config["height"] == S
    with pytest.raises(ValueError, match="8k \\+ 1"):
        evaluate_camera_video_model(module, [shard_set], VideoEvalConfig(num_frames=5))


def test_cli_writes_results_and_preview(shard_set, tmp_path):
    module = tiny_module()
    module.export_pretrained(tmp_path / "export")
    out, preview = tmp_path / "r" / "results.json", tmp_path / "preview.png"
    main(
        [
            "--checkpoint", str(tmp_path / "export"), "--sets", shard_set,
            "--out", str(out), "--preview", str(preview), "--max-clips", "1",
            "--steps", "1", "--run-sfm", "false", "--device", "cpu",
        ]
    )  # fmt: skip
    data = json.loads(out.read_text())
    assert data["metrics"]["clips"] == 1 and data["metrics"]["sfm_attempts"] == 0
    assert data["config"]["steps"] == 1 and preview.read_bytes()[:4] == b"\x89PNG"
