"""Checkpoint checks of the LaLRM and frame-model assets: tiny random modules are exported with
their own `export_pretrained`, published and promoted; the checks pass (finite Gaussians / ε̂ of
the expected shapes), and fail on a corrupted weight file, NaN weights and a wrong-stage export."""

import math
import shutil

import dagster as dg
import pytest
import torch
from safetensors.torch import load_file, save_file

from assets import frame_assets, lalrm_assets
from assets.checkpoint_checks import FILES, LOADS, METRICS, checkpoint_checks
from datagen.store import LocalStore
from orchestration.definitions import CHECKPOINT_CHECKS
from training import registry, smoke
from training.publish import publish_directory

VERSION = "20260101T000000Z-bbbbbbbb"
TINY_DIT = {"num_layers": 1, "num_attention_heads": 2, "attention_head_dim": 32, "sample_size": 8}
ASSETS = {
    "lalrm_stage1": lalrm_assets.lalrm_stage1,
    "lalrm_stage2": lalrm_assets.lalrm_stage2,
    "frame_stage1": frame_assets.frame_model_stage1,
    "frame_stage2": frame_assets.frame_model_stage2,
    "frame_synthetic_ft": frame_assets.frame_model_synthetic_ft,
    "frame_stage3": frame_assets.frame_model_stage3,
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict:
    """Export folders of tiny random modules, one per registry model, chained as the assets
    chain them (stage 2 from stage 1, the finetune from stage II, stage III from the finetune)."""
    from training.modules.frame_stage1 import ImagePriorModule
    from training.modules.frame_stage2 import FrameModelModule
    from training.modules.frame_stage3 import FrameDMDModule
    from training.modules.lalrm import LaLRMModule

    root = tmp_path_factory.mktemp("exports")
    out = {name: root / name for name in ASSETS}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    # stage 1 without a VAE (batches carry latents), stage 2 with an embedded random one (vae/)
    LaLRMModule(size="tiny", stage=1, perceptual="none").export_pretrained(out["lalrm_stage1"])
    LaLRMModule(
        size="tiny",
        stage=2,
        init_from=str(out["lalrm_stage1"]),
        vae={"size": "tiny"},
        perceptual="none",
    ).export_pretrained(out["lalrm_stage2"])
    ImagePriorModule(size="tiny", vae={"size": "tiny"}).export_pretrained(out["frame_stage1"])
    FrameModelModule(dit=dict(TINY_DIT), vae={"size": "tiny"}).export_pretrained(
        out["frame_stage2"]
    )
    FrameModelModule(init_from=str(out["frame_stage2"]), finetune=True).export_pretrained(
        out["frame_synthetic_ft"]
    )
    FrameDMDModule(teacher=str(out["frame_synthetic_ft"])).export_pretrained(out["frame_stage3"])
    torch.set_num_threads(threads)
    return out


def _publish(store: LocalStore, folder, model: str) -> str:
    prefix = registry.version_prefix(model, VERSION)
    publish_directory(folder, store, prefix, {"model": model, "metrics": {"train/loss": 0.5}})
    registry.promote_latest(store, model, VERSION)
    return prefix


def _evaluate(store: LocalStore, model: str) -> dict[str, dg.AssetCheckEvaluation]:
    checks = checkpoint_checks(ASSETS[model], model)
    result = dg.materialize(
        [ASSETS[model], *checks],
        resources={"store": store, "launcher": None},
        selection=dg.AssetSelection.checks(*checks),
        raise_on_error=False,
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.mark.parametrize("model", list(ASSETS))
def test_checks_pass_on_a_good_checkpoint(tmp_path, exports, model):
    store = LocalStore(tmp_path / "store")
    _publish(store, exports[model], model)
    results = _evaluate(store, model)
    assert set(results) == {FILES, METRICS, LOADS}
    assert all(r.passed for r in results.values()), {k: r.metadata for k, r in results.items()}
    outputs = results[LOADS].metadata["outputs"].value
    assert outputs["parameters"] > 0 and all(math.isfinite(v) for v in outputs.values())
    if model.startswith("lalrm"):
        # 5 frames of 32x32: a full-resolution map in stage 1, half resolution in stage 2
        assert outputs["gaussians"] == (5 * 32 * 32 if model == "lalrm_stage1" else 5 * 16 * 16)
        assert 0 < outputs["opacity_mean"] < 1 and 0.5 < outputs["distance_mean"] < 10.0
        assert outputs["vae_loaded"] == (model == "lalrm_stage2")
    elif model == "frame_stage3":
        assert outputs["steps"] == 2 and outputs["sample_std"] > 0
    else:
        assert outputs["eps_mse_t500"] > 0 and outputs["eps_std"] > 0


def test_a_corrupted_weight_file_fails_the_checks(tmp_path, exports):
    store = LocalStore(tmp_path / "store")
    prefix = _publish(store, exports["lalrm_stage1"], "lalrm_stage1")
    key = f"{prefix}/lalrm.safetensors"
    data = bytearray(store.get_bytes(key))
    data[-64:] = b"\xff" * 64  # same size, different bytes
    store.put_bytes(key, bytes(data))
    results = _evaluate(store, "lalrm_stage1")
    assert not results[FILES].passed and results[METRICS].passed
    assert "lalrm.safetensors: sha256 differs" in results[FILES].metadata["details"].value
    assert not results[LOADS].passed
    assert "sha256 mismatch" in results[LOADS].metadata["error"].value


@pytest.mark.parametrize(
    ("model", "weights", "problem"),
    [
        ("lalrm_stage2", "lalrm.safetensors", "gaussians['means'] has"),
        ("frame_stage3", "dit/diffusion_pytorch_model.safetensors", "x0 of generator step 0"),
    ],
)
def test_nan_weights_fail_the_load_check(tmp_path, exports, model, weights, problem):
    folder = tmp_path / "export"
    shutil.copytree(exports[model], folder)
    state = load_file(str(folder / weights))
    save_file({k: torch.full_like(v, math.nan) for k, v in state.items()}, str(folder / weights))
    store = LocalStore(tmp_path / "store")
    _publish(store, folder, model)  # a diverged run: the index matches the NaN weights
    results = _evaluate(store, model)
    assert results[FILES].passed and results[METRICS].passed
    assert not results[LOADS].passed
    error = results[LOADS].metadata["error"].value
    assert error.startswith("ValueError") and problem in error and "non-finite" in error


def test_an_export_of_another_stage_fails_the_load_check(tmp_path, exports):
    store = LocalStore(tmp_path / "store")
    _publish(store, exports["frame_stage3"], "frame_stage2")
    _publish(store, exports["lalrm_stage1"], "lalrm_stage2")
    frame = _evaluate(store, "frame_stage2")[LOADS]
    lalrm = _evaluate(store, "lalrm_stage2")[LOADS]
    assert not frame.passed and not lalrm.passed
    assert "a stage-3 frame-model export, expected 2" in frame.metadata["error"].value
    assert "a stage-1 LaLRM export, expected 2" in lalrm.metadata["error"].value


def test_every_training_asset_has_a_load_check():
    assert set(ASSETS) <= set(smoke.registered())
    covered = {k.asset_key for c in CHECKPOINT_CHECKS for k in c.check_keys if k.name == LOADS}
    assert {a.key for a in ASSETS.values()} <= covered


def test_training_assets_retry_with_the_training_policy():
    from assets.policies import TRAINING_RETRY

    for asset in ASSETS.values():
        assert asset.op.retry_policy == TRAINING_RETRY, asset.key
