"""LaLRM assets (Wonderland §3.3, App. D.2, docs/lalrm.md): progressive training as two chained
runs, then the evaluation.

    video_vae, synthetic_shards, real_shards ─► lalrm_stage1 ─► lalrm_stage2 ─► lalrm_eval
                                          generated_shards ─┘

`lalrm_stage1` trains `training/configs/lalrm/<size>.yaml` (low resolution, deconv (4, 16, 16))
on the benchmark shard sets (synthetic + ingested real); `lalrm_stage2` trains
`<size>_stage2.yaml` (high resolution, (4, 8, 8)) from the latest stage-1 export, mixing in the
generated sets under `shards/generated/` (none published: benchmark clips only, said in the
metadata). They publish under the registry names `lalrm_stage1` / `lalrm_stage2`. Both keep the
last `holdout_sets` benchmark sets (by name) out of training, so that `lalrm_eval` has held-out
clips; it evaluates the latest stage-2 version on the benchmark sets outside its lineage (PSNR /
SSIM / LPIPS at unseen views), and writes one held-out clip's Gaussians (`.ply`, `.splat`) and
fly-through (`.mp4`) to the store. Training runs out of process (Dagster Pipes); previews and
the evaluation run in this process (CUDA when available).
"""

import datetime as dt
import json
import posixpath
import tempfile
from pathlib import Path

import dagster as dg
from pydantic import Field

from assets.ingest import real_shards
from assets.policies import TRAINING_RETRY
from assets.synthetic import SHARDS_PREFIX, synthetic_shards
from assets.training_assets import KINDS, TrainingConfig, train, video_vae
from datagen.ingest.staging import SHARDS_PREFIX as REAL_SHARDS_PREFIX
from datagen.previews import png_markdown
from datagen.shards import manifest_key, published_sets
from datagen.shards.codecs import encode_png
from datagen.store import ArtifactStore
from training.launch import TrainingLauncher
from training.publish import INDEX, fetch_published
from training.registry import resolve, version_prefix
from training.runtime import resolve_device

STAGE1, STAGE2 = "lalrm_stage1", "lalrm_stage2"  # registry names (other assets load these)
CONFIG_FOLDER = "lalrm"  # training/configs/lalrm/<size>.yaml and <size>_stage2.yaml
GENERATED_PREFIX = "shards/generated"
EVAL_PREFIX = "evaluations/lalrm"


class LaLRMTrainingConfig(TrainingConfig):
    """`TrainingConfig` + the held-out sets and the post-training preview."""

    holdout_sets: int = Field(
        1,
        description="benchmark shard sets (the last by name) kept out of training for "
        "lalrm_eval; at least one set always trains",
    )
    preview: bool = Field(True, description="render a preview of the published checkpoint")
    device: str = Field("auto", description="preview device: auto (cuda if available) | cpu")
    cpu_threads: int = Field(1, description="torch threads of the preview on the CPU")


class LaLRMEvalAssetConfig(dg.Config):
    """Which checkpoint, on which clips, how (`training.evaluation.lalrm.LaLRMEvalConfig`)."""

    model: str = Field(STAGE2, description="registry model: lalrm_stage2 | lalrm_stage1")
    version: str = Field("latest", description="checkpoint version")
    sets: list[str] = Field(
        default_factory=list,
        description="manifest URIs to evaluate on; empty: the published benchmark sets outside "
        "the checkpoint's lineage (held out), else (flagged held_out=false) all of them",
    )
    max_clips: int = Field(4, description="clips evaluated")
    max_unseen: int = Field(8, description="unseen views per clip")
    num_context: int | None = Field(None, description="context frames; null: the training task's")
    stride: int | None = Field(None, description="context stride; null: the training task's")
    height: int | None = Field(None, description="frame height; null: the training task's")
    width: int | None = Field(None, description="frame width; null: the training task's")
    lpips_weights: str | None = Field(
        None, description="local safetensors of LPIPS (VGG-16); null: no LPIPS"
    )
    min_opacity: float = Field(0.005, description="pruning threshold of the exported Gaussians")
    flythrough_frames: int = Field(48, description="frames of the fly-through mp4")
    fps: float = Field(12.0, description="frame rate of the fly-through")
    device: str = Field("auto", description="auto (cuda if available) | cpu | cuda[:i]")
    cpu_threads: int = Field(1, description="torch threads on the CPU")


# ---- helpers ----------------------------------------------------------------------------------


def benchmark_manifests(store: ArtifactStore) -> list[str]:
    """Manifest URIs of the published synthetic and real-video sets, sorted by prefix."""
    sets = sorted(published_sets(store, SHARDS_PREFIX) + published_sets(store, REAL_SHARDS_PREFIX))
    if not sets:
        raise ValueError(
            f"no published shard sets under {store.uri(SHARDS_PREFIX)} or "
            f"{store.uri(REAL_SHARDS_PREFIX)}: materialize synthetic_shards first "
            "(the synthetic_data job, or `wonderforge demo`)"
        )
    return [store.uri(manifest_key(p)) for p in sets]


def split_holdout(manifests: list[str], holdout: int) -> tuple[list[str], list[str]]:
    """(training sets, held-out sets): the last ``holdout`` sets are held out, but never all."""
    if holdout < 0:
        raise ValueError(f"holdout_sets must be >= 0, got {holdout}")
    n = max(0, min(holdout, len(manifests) - 1))
    cut = len(manifests) - n
    return list(manifests[:cut]), list(manifests[cut:])


def generated_manifests(store: ArtifactStore) -> list[str]:
    """Manifest URIs of the published generated sets (`shards/generated/<batch>/`)."""
    return [store.uri(manifest_key(p)) for p in sorted(published_sets(store, GENERATED_PREFIX))]


def local_video_vae(context, store: ArtifactStore, launcher: TrainingLauncher) -> tuple[str, Path]:
    """(URI, local folder) of the latest video_vae, fetched (verified) under the launcher's
    `inputs/` once: the LaLRM loads its frozen VAE from a local folder."""
    prefix = resolve(store, "video_vae")
    folder = launcher.runs_dir / "inputs" / "video_vae" / posixpath.basename(prefix)
    if not (folder / INDEX).is_file():
        fetch_published(store, prefix, folder)
    context.log.info(f"video VAE: {store.uri(prefix)} (local copy {folder})")
    return store.uri(prefix), folder


def _preview(context, store, model: str, version: str, sets: list[str], config) -> dict:
    """Renders vs ground truth (unseen views) of the published checkpoint on one clip of
    ``sets``, with its PSNR; {} when it cannot be made (a preview never fails a training)."""
    if not config.preview or not sets:
        return {}
    from training.evaluation.lalrm import evaluate_published
    from training.previews import torch_threads

    try:
        with torch_threads(config.cpu_threads):
            result = evaluate_published(
                store, version_prefix(model, version), sets, {"max_clips": 1, "max_unseen": 4},
                device=resolve_device(config.device), progress=False,
            )  # fmt: skip
    except Exception as error:
        context.log.warning(f"no preview: {type(error).__name__}: {error}")
        return {}
    out = {}
    if result.preview is not None:
        alt = "ground truth / renders at unseen views"
        out["preview"] = dg.MetadataValue.md(png_markdown(result.preview, alt))
    if "unseen/psnr" in result.metrics:
        out["preview_psnr"] = round(result.metrics["unseen/psnr"], 2)
    return out


# ---- assets -----------------------------------------------------------------------------------


@dg.asset(
    deps=[video_vae, synthetic_shards, real_shards],
    group_name="training",
    pool="gpu",
    kinds=KINDS,
    code_version="1",
    retry_policy=TRAINING_RETRY,
    description="LaLRM stage 1 (Wonderland §3.3, D.2): video latents + Plücker rays -> "
    "pixel-aligned 3D Gaussians at low resolution (deconv 4,16,16) on the benchmark shard sets "
    "(synthetic + ingested), in the latent space of the latest video_vae.",
)
def lalrm_stage1(
    context: dg.AssetExecutionContext,
    config: LaLRMTrainingConfig,
    store: dg.ResourceParam[ArtifactStore],
    launcher: dg.ResourceParam[TrainingLauncher],
) -> dg.MaterializeResult:
    manifests, held = split_holdout(benchmark_manifests(store), config.holdout_sets)
    vae_uri, vae_dir = local_video_vae(context, store, launcher)
    run, _, metadata = train(
        context,
        config,
        store,
        launcher,
        STAGE1,
        manifests,
        extra_args=(f"--model.init_args.vae={vae_dir}",),
        lineage=(vae_uri,),
        config_file=(CONFIG_FOLDER, config.size),
    )
    metadata["video_vae"] = dg.MetadataValue.url(vae_uri)
    metadata["held_out_sets"] = dg.MetadataValue.json(held)
    metadata.update(_preview(context, store, STAGE1, run.version, held or manifests, config))
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(run.version))


@dg.asset(
    deps=[lalrm_stage1, dg.AssetKey("generated_shards")],
    group_name="training",
    pool="gpu",
    kinds=KINDS,
    code_version="1",
    retry_policy=TRAINING_RETRY,
    description="LaLRM stage 2 (D.2): high resolution (deconv 4,8,8), initialised from the latest "
    "lalrm_stage1, on the benchmark sets mixed with the generated out-of-domain sets under "
    "shards/generated/ (benchmark clips only while none is published).",
)
def lalrm_stage2(
    context: dg.AssetExecutionContext,
    config: LaLRMTrainingConfig,
    store: dg.ResourceParam[ArtifactStore],
    launcher: dg.ResourceParam[TrainingLauncher],
) -> dg.MaterializeResult:
    manifests, held = split_holdout(benchmark_manifests(store), config.holdout_sets)
    stage1_uri = store.uri(resolve(store, STAGE1))
    generated = generated_manifests(store)
    vae_uri, vae_dir = local_video_vae(context, store, launcher)
    extra = [
        f"--model.init_args.vae={vae_dir}",
        f"--model.init_args.init_from={stage1_uri}",
        f"--data.init_args.mix_sets={json.dumps(generated)}",
    ]
    if generated:
        mix = f"{len(generated)} generated set(s) mixed in"
    else:
        extra.append("--data.init_args.mix_ratio=0.0")
        mix = f"no generated set under {store.uri(GENERATED_PREFIX)}: benchmark clips only"
        context.log.warning(f"lalrm_stage2: {mix}")
    run, _, metadata = train(
        context,
        config,
        store,
        launcher,
        STAGE2,
        manifests,
        extra_args=tuple(extra),
        lineage=(stage1_uri, vae_uri, *generated),
        config_file=(CONFIG_FOLDER, f"{config.size}_stage2"),
    )
    metadata.update(
        {
            "init_from": dg.MetadataValue.url(stage1_uri),
            "video_vae": dg.MetadataValue.url(vae_uri),
            "generated_sets": dg.MetadataValue.json(generated),
            "generated_data": mix,
            "held_out_sets": dg.MetadataValue.json(held),
        }
    )
    metadata.update(_preview(context, store, STAGE2, run.version, held or manifests, config))
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(run.version))


@dg.asset(
    deps=[lalrm_stage2],
    group_name="training",
    pool="gpu",
    kinds={"pytorch"},
    code_version="1",
    description="LaLRM evaluation (Wonderland Tables 2-3): PSNR / SSIM (LPIPS with local weights) "
    "at unseen views of held-out benchmark clips, a renders-vs-ground-truth preview, and one "
    "held-out clip's Gaussians (.ply, .splat) and fly-through (.mp4) in the store.",
)
def lalrm_eval(
    context: dg.AssetExecutionContext,
    config: LaLRMEvalAssetConfig,
    store: dg.ResourceParam[ArtifactStore],
) -> dg.MaterializeResult:
    from training.evaluation.common import checkpoint_lineage, held_out
    from training.evaluation.lalrm import evaluate_published, metrics_table
    from training.lalrm_infer import write_scene
    from training.previews import torch_threads

    prefix = resolve(store, config.model, config.version)
    version = posixpath.basename(prefix)
    trained = checkpoint_lineage(store.get_json(f"{prefix}/{INDEX}"), follow=(STAGE1, STAGE2))
    if config.sets:
        sets, is_held_out = list(config.sets), not (set(config.sets) & trained)
    else:
        sets, is_held_out = held_out(benchmark_manifests(store), trained)
        if not is_held_out:
            context.log.warning("no held-out shard set: evaluating on the training sets")
    overrides = {
        k: getattr(config, k)
        for k in ("max_clips", "max_unseen", "num_context", "stride", "height", "width")
        if getattr(config, k) is not None
    }
    with torch_threads(config.cpu_threads):
        result = evaluate_published(
            store, prefix, sets, overrides, lpips_weights=config.lpips_weights,
            device=resolve_device(config.device), progress=False,
        )  # fmt: skip
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out = f"{EVAL_PREFIX}/{config.model}/{version}/{stamp}"
        with tempfile.TemporaryDirectory(prefix="wonderforge-lalrm-eval-") as tmp:
            paths = write_scene(
                tmp, result.scene, result.context, result.background, config.min_opacity,
                config.flythrough_frames, config.fps, progress=False,
                meta={"checkpoint": store.uri(prefix), "held_out": is_held_out},
            )  # fmt: skip
            for path in paths.values():
                store.put_file(f"{out}/{path.name}", path)
            scene_meta = json.loads(paths["meta"].read_text())
    report = {**result.to_json(), "checkpoint": store.uri(prefix), "sets": sets,
              "held_out": is_held_out}  # fmt: skip
    store.put_json(f"{out}/results.json", report)
    metadata = {
        "uri": dg.MetadataValue.url(store.uri(f"{out}/results.json")),
        "checkpoint_uri": dg.MetadataValue.url(store.uri(prefix)),
        "model": config.model,
        "version": version,
        "held_out": is_held_out,
        "sets": dg.MetadataValue.json(sets),
        "metrics": dg.MetadataValue.json(result.metrics),
        "table": dg.MetadataValue.md(metrics_table(result)),
        "ply_uri": dg.MetadataValue.url(store.uri(f"{out}/scene.ply")),
        "splat_uri": dg.MetadataValue.url(store.uri(f"{out}/scene.splat")),
        "flythrough_uri": dg.MetadataValue.url(store.uri(f"{out}/flythrough.mp4")),
        "scene_clip": result.context.key,
        "gaussians_written": scene_meta["gaussians_written"],
    }
    metadata.update({k: round(v, 4) for k, v in result.metrics.items()})
    if result.preview is not None:
        store.put_bytes(f"{out}/preview.png", encode_png(result.preview, 6))
        alt = "ground truth / renders at unseen views (row pairs)"
        metadata["preview"] = dg.MetadataValue.md(png_markdown(result.preview, alt))
    return dg.MaterializeResult(metadata=metadata)
