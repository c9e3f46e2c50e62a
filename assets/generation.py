"""Generated out-of-domain videos (Wonderland §3.3) and the video model's evaluation (§4.1).

    camera_video_model ──→ generated_videos[batch] ──→ generated_shards[batch]   (group data)
                      └──→ video_model_eval                                     (group training)

`generated_videos` samples one batch (a `generation_batches` partition) with the latest (or a
named) camera_video_model version: conditioning images (procedural-world renders, image files,
or an image prior's samples) + RealEstate10K-like camera paths -> mp4 + latents + a clip object
per video. `generated_shards` packs the batch into the `generated` shard set under
`shards/generated/<batch>/` (what LaLRM's stage 2 reads). `video_model_eval` measures camera
precision (SfM on generated frames) and PSNR/SSIM on held-out clips. Models run in process.
"""

import datetime as dt
import posixpath

import dagster as dg
import numpy as np
from pydantic import Field

from assets.automation import CHEAP_DERIVED
from assets.checks import shard_integrity_spec
from assets.partitions import GENERATION_BATCHES
from assets.shard_sets import ShardSetConfig, publish_clip_objects
from assets.training_assets import camera_video_model
from datagen.generated import (
    clip_object_keys,
    generate_batch,
    generated_preview,
    image_conditionings,
    load_image_ref,
    shards_prefix,
    videos_prefix,
    world_conditionings,
)
from datagen.ingest.staging import SHARDS_PREFIX as REAL_SHARDS_PREFIX
from datagen.previews import png_markdown
from datagen.shards import manifest_key, published_sets
from datagen.shards.codecs import encode_png
from datagen.store import ArtifactStore
from datagen.worlds import generate_world
from datagen.worlds.catalog import SPEC_PREFIX, load_spec

SOURCES = ("worlds", "images", "image_prior")
SYNTHETIC_SHARDS_PREFIX = "shards/synthetic"
EVAL_ROOTS = (REAL_SHARDS_PREFIX, SYNTHETIC_SHARDS_PREFIX)
EVAL_PREFIX = "evaluations/camera_video_model"


class GeneratedVideosConfig(dg.Config):
    """One batch of generated videos: how many, from what, along which paths, how sampled."""

    num_videos: int = Field(4, description="videos in the batch")
    num_frames: int | None = Field(None, description="frames per video (8k+1); null: the model's")
    height: int | None = Field(None, description="frame height; null: the model's")
    width: int | None = Field(None, description="frame width; null: the model's")
    source: str = Field("worlds", description="conditioning images: worlds | images | image_prior")
    worlds: list[str] = Field(
        default_factory=list, description="world ids (source worlds); empty: every registered one"
    )
    images: list[str] = Field(
        default_factory=list, description="image files or store keys (source images)"
    )
    image_prior: str | None = Field(
        None, description="image-prior export folder or published URI (source image_prior)"
    )
    prompts: list[str] = Field(
        default_factory=list, description="prompts for the image prior (also the video captions)"
    )
    templates: list[str] = Field(
        default_factory=list,
        description="camera templates to draw from uniformly; empty: the RealEstate10K-like mix",
    )
    fov_deg: float = Field(60.0, description="horizontal field of view of the cameras")
    path_scale: float = Field(1.0, description="travel scale of world-free paths (images)")
    seed: int = Field(0, description="video i uses seed + i; paths drawn from seed")
    steps: int = Field(50, description="denoising steps")
    guidance_scale: float = Field(6.0, description="text classifier-free guidance (<= 1: off)")
    scheduler: str = Field("ddim", description="ddim | dpm")
    fps: float = Field(8.0, description="frame rate of the mp4 files")
    checkpoint_version: str = Field("latest", description="camera_video_model version")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")


def _registered_worlds(store: ArtifactStore) -> list[str]:
    keys = store.list(SPEC_PREFIX)
    return sorted(posixpath.basename(k)[: -len(".json")] for k in keys if k.endswith(".json"))


def _conditionings(config: GeneratedVideosConfig, store: ArtifactStore, geometry: dict, log):
    """The batch's conditioning views from the configured source (frames/size from geometry)."""
    from training.video_generation import image_prior_images

    rng = np.random.default_rng(config.seed)
    n, F = config.num_videos, geometry["num_frames"]
    H, W = geometry["height"], geometry["width"]
    if config.source == "worlds":
        ids = list(config.worlds) or _registered_worlds(store)
        if not ids:
            raise ValueError(
                f"source 'worlds' but no world is registered under {store.uri(SPEC_PREFIX)} "
                "(`wonderforge add-worlds`) and none given in `worlds`"
            )
        if len(ids) > n:  # only the worlds this batch uses, drawn with the batch's seed
            ids = sorted(str(i) for i in rng.choice(ids, size=n, replace=False))
        log.info(f"conditioning on renders of {len(ids)} world(s)")
        worlds = [generate_world(load_spec(store, world_id)) for world_id in ids]
        return world_conditionings(worlds, n, F, H, W, rng, config.templates, config.fov_deg)
    if config.source == "images":
        if not config.images:
            raise ValueError("source 'images' needs `images` (files or store keys)")
        images = [(posixpath.basename(ref), load_image_ref(ref, store)) for ref in config.images]
        return image_conditionings(
            images, n, F, H, W, rng, config.templates, config.fov_deg, config.path_scale
        )
    if config.source == "image_prior":
        if not config.image_prior or not config.prompts:
            raise ValueError("source 'image_prior' needs `image_prior` (an export) and `prompts`")
        pictures = image_prior_images(
            config.image_prior, list(config.prompts), seed=config.seed, device=config.device
        )
        names = [f"prior-{i}" for i in range(len(pictures))]
        return image_conditionings(
            list(zip(names, pictures)),
            n, F, H, W, rng, config.templates, config.fov_deg, config.path_scale,
            captions=list(config.prompts), kind="image_prior",
        )  # fmt: skip
    raise ValueError(f"unknown source {config.source!r}; expected one of {SOURCES}")


@dg.asset(
    partitions_def=GENERATION_BATCHES,
    deps=[camera_video_model],
    group_name="data",
    pool="gpu",
    kinds={"pytorch"},
    code_version="1",
    description="A batch of out-of-domain videos from the camera-guided video model (Wonderland "
    "§3.3): conditioning image + RealEstate10K-like camera path -> mp4, latents and a clip "
    "object per video, with the generator checkpoint in provenance.",
)
def generated_videos(
    context: dg.AssetExecutionContext,
    config: GeneratedVideosConfig,
    store: dg.ResourceParam[ArtifactStore],
) -> dg.MaterializeResult:
    from training.video_generation import load_generator

    batch = context.partition_key
    if config.num_videos < 1:
        raise ValueError(f"num_videos must be >= 1, got {config.num_videos}")
    generator = load_generator(
        store,
        config.checkpoint_version,
        config.device,
        config.steps,
        config.guidance_scale,
        config.scheduler,
    )
    geometry = dict(generator.geometry)
    for name in ("num_frames", "height", "width"):
        if getattr(config, name) is not None:
            geometry[name] = getattr(config, name)
    context.log.info(f"generator {generator.checkpoint}: {geometry}")
    conditionings = _conditionings(config, store, geometry, context.log)
    records = generate_batch(
        store, batch, generator, conditionings, config.seed, config.fps, progress=False
    )
    preview = generated_preview(records)
    store.put_bytes(f"{videos_prefix(batch)}/preview.png", encode_png(preview, 6))
    return dg.MaterializeResult(
        metadata={
            "uri": dg.MetadataValue.url(store.uri(videos_prefix(batch))),
            "videos": len(records),
            "frames": sum(r.num_frames for r in records),
            "bytes": sum(r.bytes for r in records),
            "checkpoint_uri": dg.MetadataValue.url(generator.checkpoint),
            "source": config.source,
            "settings": dg.MetadataValue.json({**generator.settings, **geometry}),
            "video_uris": dg.MetadataValue.json([store.uri(r.files["video"]) for r in records]),
            "latents_uris": dg.MetadataValue.json([store.uri(r.files["latents"]) for r in records]),
            "preview": dg.MetadataValue.md(png_markdown(preview, "condition | generated frames")),
        }
    )


@dg.asset(
    automation_condition=CHEAP_DERIVED,
    partitions_def=GENERATION_BATCHES,
    deps=[generated_videos],
    group_name="data",
    kinds={"webdataset"},
    code_version="1",
    check_specs=[shard_integrity_spec("generated_shards")],
    description="The batch's generated clips (frames, latents, conditioning poses, no depth) as "
    "a `generated` webdataset shard set under shards/generated/<batch>/ (LaLRM stage 2's data).",
)
def generated_shards(
    context: dg.AssetExecutionContext,
    config: ShardSetConfig,
    store: dg.ResourceParam[ArtifactStore],
):
    batch = context.partition_key
    keys = clip_object_keys(store, batch)
    if not keys:
        raise ValueError(f"no generated clips under {store.uri(f'clips/generated/{batch}')}")
    metas = [
        store.get_json(k) for k in store.list(videos_prefix(batch)) if k.endswith("/meta.json")
    ]
    checkpoints = sorted({m["provenance"]["generator_checkpoint"] for m in metas})
    yield from publish_clip_objects(
        store,
        keys,
        shards_prefix(batch),
        "generated",
        batch,
        config,
        extra_metadata={"generator_checkpoints": dg.MetadataValue.json(checkpoints)},
    )


class VideoModelEvalConfig(dg.Config):
    """Which checkpoint, on which clips, sampled how (Wonderland §4.1 metrics)."""

    checkpoint_version: str = Field("latest", description="camera_video_model version")
    shard_sets: list[str] = Field(
        default_factory=list,
        description="manifest URIs to evaluate on; empty: the published real/synthetic sets the "
        "checkpoint was not trained on",
    )
    allow_training_sets: bool = Field(
        True,
        description="with no held-out set, evaluate on the training sets (flagged held_out=false)",
    )
    max_clips: int = Field(4, description="clips evaluated")
    num_frames: int | None = Field(None, description="frames per window (8k+1); null: the model's")
    stride: int = Field(1, description="frame stride inside a clip")
    steps: int = Field(25, description="denoising steps")
    guidance_scale: float = Field(6.0, description="text classifier-free guidance")
    seed: int = Field(0, description="clip i uses seed + i")
    similarity_frames: int = Field(14, description="frames for PSNR/SSIM (paper: 14)")
    pose_frames: int = Field(16, description="frames for R_err/T_err (paper: 16)")
    run_sfm: bool = Field(True, description="estimate the generated videos' poses with SfM")
    sfm_threads: int = Field(2, description="pycolmap CPU threads per video")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")


def _eval_sets(config: VideoModelEvalConfig, store: ArtifactStore, trained: list[str], log):
    """(manifest URIs, held_out)."""
    if config.shard_sets:
        return list(config.shard_sets), not (set(config.shard_sets) & set(trained))
    published = [
        store.uri(manifest_key(p)) for root in EVAL_ROOTS for p in published_sets(store, root)
    ]
    held = [uri for uri in published if uri not in trained]
    if held:
        return held, True
    if not published:
        raise ValueError(f"no published shard set under {list(EVAL_ROOTS)} to evaluate on")
    if not config.allow_training_sets:
        raise ValueError(
            f"no held-out shard set: all {len(published)} published sets under "
            f"{list(EVAL_ROOTS)} trained the checkpoint; give `shard_sets`"
        )
    log.warning("no held-out shard set: evaluating on the checkpoint's training sets")
    return published, False


def _metrics_table(clips: list[dict]) -> str:
    lines = [
        "| clip | PSNR | SSIM | SfM | R_err ° | T_err |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in clips:
        sfm = c.get("sfm", {})
        status = sfm.get("status", "off")
        if status == "failed":
            status = f"failed: {sfm['reason'][:60]}"
        rot, trans = sfm.get("rot_err_deg"), sfm.get("trans_err")
        cells = [
            c["key"], f"{c['psnr']:.2f}", f"{c['ssim']:.3f}", status,
            "" if rot is None else f"{rot:.2f}", "" if trans is None else f"{trans:.3f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dg.asset(
    deps=[camera_video_model],
    group_name="training",
    pool="gpu",
    kinds={"pytorch"},
    code_version="1",
    description="Camera-guided video model evaluation (Wonderland §4.1): R_err/T_err from SfM on "
    "generated videos (relative to frame 0, scale-normalised; SfM failures counted) and "
    "PSNR/SSIM over the first 14 frames against held-out ground truth.",
)
def video_model_eval(
    context: dg.AssetExecutionContext,
    config: VideoModelEvalConfig,
    store: dg.ResourceParam[ArtifactStore],
) -> dg.MaterializeResult:
    from training.evaluation.video_model import VideoEvalConfig, evaluate_camera_video_model
    from training.registry import read_index
    from training.video_generation import load_camera_video_model

    module, info = load_camera_video_model(store, config.checkpoint_version, config.device)
    trained = read_index(store, info["model"], info["version"]).get("inputs", [])
    sets, held_out = _eval_sets(config, store, trained, context.log)
    eval_config = VideoEvalConfig(
        num_frames=config.num_frames,
        stride=config.stride,
        max_clips=config.max_clips,
        steps=config.steps,
        guidance_scale=config.guidance_scale,
        seed=config.seed,
        similarity_frames=config.similarity_frames,
        pose_frames=config.pose_frames,
        run_sfm=config.run_sfm,
        sfm_threads=config.sfm_threads,
    )
    result = evaluate_camera_video_model(module, sets, eval_config, progress=False)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    prefix = f"{EVAL_PREFIX}/{info['version']}/{stamp}"
    store.put_json(
        f"{prefix}/results.json",
        {**result.to_json(), "checkpoint": info["uri"], "sets": sets, "held_out": held_out},
    )
    metadata = {
        "uri": dg.MetadataValue.url(store.uri(f"{prefix}/results.json")),
        "checkpoint_uri": dg.MetadataValue.url(info["uri"]),
        "version": info["version"],
        "held_out": held_out,
        "sets": dg.MetadataValue.json(sets),
        "metrics": dg.MetadataValue.json(result.metrics),
        "table": dg.MetadataValue.md(_metrics_table(result.clips)),
    }
    metadata.update({k: v for k, v in result.metrics.items() if v is not None})
    if result.preview is not None:
        store.put_bytes(f"{prefix}/preview.png", encode_png(result.preview, 6))
        alt = "ground truth / generated (row pairs)"
        metadata["preview"] = dg.MetadataValue.md(png_markdown(result.preview, alt))
    return dg.MaterializeResult(metadata=metadata)
