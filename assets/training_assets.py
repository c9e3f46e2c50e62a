"""Training assets: the image VAE, the video VAE and the camera-guided video model.

Each materialization trains a new version out of process (`TrainingLauncher`, Dagster Pipes),
published by `PublishCheckpoint` under `checkpoints/<model>/<version>/`, then promoted to
`checkpoints/<model>/latest.json`. Metadata: the checkpoint URI, version, metrics, training
seconds, the shard manifests trained on (lineage), a loss-curve plot (`loss_curve`, PNG of the
run's train/* metrics vs step) and, for the VAEs, a reconstruction preview.
"""

import json
import posixpath

import dagster as dg
from pydantic import Field

from assets.policies import TRAINING_RETRY
from assets.synthetic import SHARDS_PREFIX, synthetic_shards
from datagen.previews import png_markdown
from datagen.shards import manifest_key, published_sets
from datagen.store import ArtifactStore
from training.config_files import config_path
from training.launch import LaunchedRun, TrainingFailed, TrainingLauncher
from training.loss_curves import loss_curve_image, run_metric_series
from training.publish import INDEX, fetch_published
from training.registry import (
    LATEST,
    config_hash,
    model_prefix,
    new_version,
    promote_latest,
    resolve,
)
from training.registry import version_prefix as checkpoint_prefix

KINDS = {"pytorch", "lightning"}


class TrainingConfig(dg.Config):
    """Which config to train and how: `training/configs/<model>/<size>.yaml` + overrides."""

    size: str = Field("tiny", description="config size: tiny | small | paper")
    max_steps: int | None = Field(None, description="override the config's trainer.max_steps")
    overrides: list[str] = Field(
        default_factory=list,
        description="extra LightningCLI arguments, applied last, e.g. "
        "['--data.init_args.batch_size=2', '--model.init_args.lr=3e-4']",
    )
    resume: bool = Field(
        True,
        description="continue an unfinished earlier run of this exact config from its last "
        "checkpoint (false: always start a new version from step 0)",
    )


def _plain(config: TrainingConfig) -> dict:
    return {"size": config.size, "max_steps": config.max_steps, "overrides": list(config.overrides)}


def shard_manifests(store: ArtifactStore) -> list[str]:
    """Manifest URIs of every published synthetic shard set (one per materialized partition)."""
    sets = published_sets(store, SHARDS_PREFIX)
    if not sets:
        raise ValueError(
            f"no published shard sets under {store.uri(SHARDS_PREFIX)}: materialize "
            "synthetic_shards first (the synthetic_data job, or `wonderforge demo`)"
        )
    return [store.uri(manifest_key(prefix)) for prefix in sets]


def train(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    store: ArtifactStore,
    launcher: TrainingLauncher,
    model: str,
    manifests: list[str],
    extra_args: tuple[str, ...] = (),
    lineage: tuple[str, ...] = (),
    config_file: tuple[str, str] | None = None,
) -> tuple[LaunchedRun, dict, dict]:
    """Launch one training run of `model`, check what it published, promote it to latest.

    config_file: (config folder, config name) when the YAML is not `<model>/<size>.yaml`, e.g.
    ("frame_stage2", "tiny_synthetic_ft") for the registry model `frame_synthetic_ft`.
    Returns (run, published index, metadata for the MaterializeResult)."""
    config_model, config_name = config_file or (model, config.size)
    inputs = [*manifests, *lineage]
    args = [f"--data.init_args.train_sets={json.dumps(manifests)}", *extra_args]
    if config.max_steps is not None:
        args.append(f"--trainer.max_steps={config.max_steps}")
    yaml_text = config_path(config_model, config_name).read_text()  # rejects unknown sizes early
    spec = {"model": model, "yaml": yaml_text, "args": args, **_plain(config)}
    resumed = _resumable_version(context, store, launcher, model, spec) if config.resume else None
    version = resumed or new_version(spec)
    prefix = checkpoint_prefix(model, version)
    args += [
        f"--trainer.callbacks.init_args.prefix={prefix}",
        f"--trainer.callbacks.init_args.model_name={model}",
        f"--trainer.callbacks.init_args.inputs={json.dumps(inputs)}",
        *config.overrides,
    ]
    try:
        run = launcher.run(context, model, config_name, version, args, config_model=config_model)
    except TrainingFailed as error:
        if error.retryable:
            raise
        raise dg.Failure(description=str(error), allow_retries=False) from error
    if not store.exists(posixpath.join(prefix, INDEX)):
        raise dg.Failure(
            description=f"training {model} exited cleanly but published nothing at "
            f"{store.uri(prefix)} (did an override change the PublishCheckpoint prefix?); "
            f"log: {run.log_path}",
            allow_retries=False,
        )
    index = store.get_json(posixpath.join(prefix, INDEX))
    promote_latest(store, model, version)
    metrics = index.get("metrics", {})
    metadata = {
        **run.reported,
        "uri": dg.MetadataValue.url(store.uri(prefix)),
        "checkpoint_uri": dg.MetadataValue.url(store.uri(prefix)),
        "version": version,
        "global_step": index.get("global_step"),
        "metrics": dg.MetadataValue.json(metrics),
        "training_seconds": round(run.seconds, 1),
        "inputs": dg.MetadataValue.json(index.get("inputs", inputs)),
        "config": f"{config_model}/{config_name}.yaml",
        "overrides": dg.MetadataValue.json(list(config.overrides)),
        "latest": dg.MetadataValue.url(store.uri(f"{model_prefix(model)}/{LATEST}")),
        "log": dg.MetadataValue.path(str(run.log_path)),
    }
    if "train/loss" in metrics:
        metadata["loss"] = metrics["train/loss"]
    metadata.update(loss_curve_metadata(context, run))
    context.log.info(f"{model} {version} published to {store.uri(prefix)} and promoted to latest")
    return run, index, metadata


def loss_curve_metadata(context, run: LaunchedRun) -> dict:
    """`loss_curve`: the run's train/* metrics vs step as an inline PNG ({} if nothing was logged
    or the plot fails: a plot never fails a finished training)."""
    try:
        series = run_metric_series(run.run_dir, run.progress)
        if not series:
            context.log.info(f"{run.model}: no train/* metrics logged, no loss curve")
            return {}
        image = loss_curve_image(series)
    except Exception as error:
        context.log.warning(f"no loss curve: {type(error).__name__}: {error}")
        return {}
    return {"loss_curve": dg.MetadataValue.md(png_markdown(image, f"{run.model} loss curves"))}


def _resumable_version(context, store, launcher, model: str, spec: dict) -> str | None:
    """The version of an unfinished earlier run with this exact config, to resume (or None)."""

    def published(version: str) -> bool:
        return store.exists(posixpath.join(checkpoint_prefix(model, version), INDEX))

    version = launcher.resumable_version(model, config_hash(spec), published)
    if version is not None:
        context.log.info(f"{model}: resuming the unfinished run {version} (same config)")
    return version


def _preview(context, store: ArtifactStore, prefix: str, kind: str) -> dict:
    """Reconstruction contact sheet + PSNR of the published VAE; {} if it cannot be made."""
    from training.previews import vae_reconstruction_sheet

    shard_prefix = published_sets(store, SHARDS_PREFIX)[0]
    try:
        sheet, psnr = vae_reconstruction_sheet(store, prefix, kind, shard_prefix)
    except Exception as error:  # a preview never fails a finished training
        context.log.warning(f"no reconstruction preview: {type(error).__name__}: {error}")
        return {}
    return {
        "preview": dg.MetadataValue.md(png_markdown(sheet, "originals / reconstructions")),
        "preview_psnr": round(psnr, 2),
    }


def _vae_asset(context, config, store, launcher, model: str, kind: str) -> dg.MaterializeResult:
    manifests = shard_manifests(store)
    run, _, metadata = train(context, config, store, launcher, model, manifests)
    metadata.update(_preview(context, store, checkpoint_prefix(model, run.version), kind))
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(run.version))


@dg.asset(
    deps=[synthetic_shards],
    group_name="training",
    pool="gpu",
    kinds=KINDS,
    code_version="1",
    retry_policy=TRAINING_RETRY,
    description="SD-style image VAE (spatial ×8, 4 latent channels) for the frame model's latent "
    "space, trained on frames of every published synthetic shard set.",
)
def image_vae(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    store: dg.ResourceParam[ArtifactStore],
    launcher: dg.ResourceParam[TrainingLauncher],
) -> dg.MaterializeResult:
    return _vae_asset(context, config, store, launcher, "image_vae", "image")


@dg.asset(
    deps=[synthetic_shards],
    group_name="training",
    pool="gpu",
    kinds=KINDS,
    code_version="1",
    retry_policy=TRAINING_RETRY,
    description="CogVideoX-style 3D video VAE (temporal ×4, spatial ×8) that the video model and "
    "LaLRM work in, trained on clips of every published synthetic shard set.",
)
def video_vae(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    store: dg.ResourceParam[ArtifactStore],
    launcher: dg.ResourceParam[TrainingLauncher],
) -> dg.MaterializeResult:
    return _vae_asset(context, config, store, launcher, "video_vae", "video")


@dg.asset(
    deps=[video_vae, synthetic_shards],
    group_name="training",
    pool="gpu",
    kinds=KINDS,
    code_version="1",
    retry_policy=TRAINING_RETRY,
    description="Camera-guided video model (Wonderland §3.2: ControlNet copy + camera-LoRA on a "
    "frozen CogVideoX I2V base) in the latent space of the latest video_vae.",
)
def camera_video_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    store: dg.ResourceParam[ArtifactStore],
    launcher: dg.ResourceParam[TrainingLauncher],
) -> dg.MaterializeResult:
    manifests = shard_manifests(store)
    vae_prefix = resolve(store, "video_vae")
    vae_uri = store.uri(vae_prefix)
    # CameraVideoModule loads its VAE from a local folder: fetch the published one (verified)
    vae_dir = launcher.runs_dir / "inputs" / "video_vae" / posixpath.basename(vae_prefix)
    if not (vae_dir / INDEX).is_file():
        fetch_published(store, vae_prefix, vae_dir)
    context.log.info(f"video VAE: {vae_uri} (local copy {vae_dir})")
    run, _, metadata = train(
        context,
        config,
        store,
        launcher,
        "camera_video_model",
        manifests,
        extra_args=(f"--model.init_args.vae={vae_dir}",),
        lineage=(vae_uri,),
    )
    metadata["video_vae"] = dg.MetadataValue.url(vae_uri)
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(run.version))
