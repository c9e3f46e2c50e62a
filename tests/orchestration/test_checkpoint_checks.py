"""Checkpoint asset checks on the three training assets: tiny exports (built, not trained) are
published and promoted; the checks pass, then catch a corrupted file, a NaN loss and a checkpoint
that no longer loads."""

import json
import math

import dagster as dg
import pytest
import yaml

from assets.checkpoint_checks import FILES, LOADS, METRICS, checkpoint_checks
from assets.training_assets import camera_video_model, image_vae, video_vae
from datagen.store import LocalStore
from models.autoencoders import build_image_vae, build_video_vae
from training import registry, smoke
from training.config_files import config_path
from training.publish import publish_directory

VERSION = "20260101T000000Z-aaaaaaaa"
ASSETS = {"image_vae": image_vae, "video_vae": video_vae, "camera_video_model": camera_video_model}


def _export(model: str, folder) -> None:
    if model == "image_vae":
        build_image_vae("tiny").save_pretrained(str(folder), safe_serialization=True)
    elif model == "video_vae":
        build_video_vae("tiny").save_pretrained(str(folder), safe_serialization=True)
    else:
        from training.modules.video_model import CameraVideoModule

        init = yaml.safe_load(config_path(model, "tiny").read_text())["model"]["init_args"]
        CameraVideoModule(**init).export_pretrained(folder)


def _publish(store: LocalStore, tmp_path, model: str, loss: float = 0.25) -> str:
    folder = tmp_path / "export" / model
    folder.mkdir(parents=True)
    _export(model, folder)
    prefix = registry.version_prefix(model, VERSION)
    publish_directory(folder, store, prefix, {"model": model, "metrics": {"train/loss": loss}})
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


@pytest.mark.parametrize("model", ["image_vae", "video_vae", "camera_video_model"])
def test_checks_pass_on_a_good_checkpoint(tmp_path, model):
    store = LocalStore(tmp_path / "store")
    _publish(store, tmp_path, model)
    results = _evaluate(store, model)
    assert set(results) == {FILES, METRICS, LOADS}
    assert all(r.passed for r in results.values()), {k: r.metadata for k, r in results.items()}
    assert results[FILES].metadata["problems"].value == 0
    assert results[FILES].metadata["version"].value == VERSION
    outputs = results[LOADS].metadata["outputs"].value
    assert outputs and all(math.isfinite(v) for v in outputs.values())
    if model.endswith("vae"):
        assert outputs["psnr"] > 0 and outputs["latent_std"] > 0
    else:
        assert outputs["loss_t500"] > 0 and outputs["trainable_parameters"] > 0


def test_checks_catch_corruption_nan_losses_and_unloadable_weights(tmp_path):
    store = LocalStore(tmp_path / "store")
    prefix = _publish(store, tmp_path, "image_vae", loss=float("nan"))
    weights = next(k for k in store.list(prefix) if k.endswith(".safetensors"))
    data = bytearray(store.get_bytes(weights))
    data[-100:] = b"\x00" * 100  # same size, different bytes
    store.put_bytes(weights, bytes(data))
    results = _evaluate(store, "image_vae")
    assert not results[FILES].passed
    assert "sha256 differs" in results[FILES].metadata["details"].value
    assert not results[METRICS].passed
    assert results[METRICS].metadata["non_finite"].value == {"train/loss": "nan"}
    assert not results[LOADS].passed  # the verified fetch refuses the corrupted file
    assert "sha256 mismatch" in results[LOADS].metadata["error"].value

    config = json.loads(store.get_bytes(f"{prefix}/config.json"))
    config["block_out_channels"] = [7, 7]  # no longer matches the weights
    store.put_bytes(f"{prefix}/config.json", json.dumps(config).encode())
    index = store.get_json(f"{prefix}/index.json")
    for name in ("config.json", weights.rsplit("/", 1)[-1]):
        key = f"{prefix}/{name}"
        index["files"][name] = {"bytes": store.size(key), "sha256": store.sha256(key)}
    store.put_json(f"{prefix}/index.json", index)
    results = _evaluate(store, "image_vae")
    assert results[FILES].passed and not results[LOADS].passed


def test_no_latest_checkpoint_fails_with_a_reason(tmp_path):
    results = _evaluate(LocalStore(tmp_path / "store"), "video_vae")
    assert not any(r.passed for r in results.values())
    assert (
        results[FILES].metadata["problem"].value == "no video_vae checkpoint promoted to latest yet"
    )


def test_smoke_registry_names_what_it_knows():
    assert {"image_vae", "video_vae", "camera_video_model"} <= set(smoke.registered())
    with pytest.raises(KeyError, match="no smoke test registered for 'lalrm_stage9'"):
        smoke.smoke_test("lalrm_stage9", "/nowhere")
    assert [c.check_specs for c in checkpoint_checks("lalrm_stage1", "lalrm_stage1", smoke=False)]
