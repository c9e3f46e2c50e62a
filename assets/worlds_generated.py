"""Worlds generated at inference: `generated_worlds`, one `world_requests` partition per request.

    frame_model_stage1 ─┐
    lalrm_stage2 ───────┼──→ generated_worlds[request]            (group inference)
    camera_video_model ─┘

A request (image + prompts + zoom path, `datagen.world_requests`) is stored under
`requests/worlds/<id>/` by `wonderforge generate --submit` / `wonderforge add-world-request`, the
world-inbox sensor, or this asset's launchpad config (`image` + `prompts` for a partition added
in the UI). The asset resolves the latest published checkpoints (fallbacks when a model is not
published yet, recorded in world.json), generates the world (`training.worldgen`) and uploads
the folder to `worlds/<id>/`: per-level .ply, PNGs, zoom.mp4, orbits, world.json.
"""

import tempfile
from pathlib import Path

import dagster as dg
from pydantic import Field

from assets.partitions import WORLD_REQUESTS
from datagen.previews import png_markdown
from datagen.store import ArtifactStore, store_from_env_uri
from datagen.world_files import read_manifest, upload_world
from datagen.world_requests import (
    WorldRequest,
    WorldRequestError,
    decode_image,
    load_request,
    request_prefix,
    save_request,
)
from training.runtime import cpu_threads
from training.worldgen import GenerationOptions, generate

WORLDS_PREFIX = "worlds"
CHECKPOINT_ASSETS = ("frame_model_stage1", "lalrm_stage2", "camera_video_model")


class GeneratedWorldConfig(dg.Config):
    """Generation settings; `image` + `prompts` create the partition's request from the launchpad."""

    image: str = Field("", description="launchpad: input image (local path or store URI) for a "
                       "partition without a stored request")  # fmt: skip
    prompts: list[str] = Field(default_factory=list, description="launchpad: one prompt per level")
    zoom: int = Field(2, description="launchpad: zoom factor per level of a new request (2 or 4)")
    steps: int = Field(50, description="launchpad: sampling steps of a new request")
    size: int = Field(0, description="launchpad: working resolution of a new request (0: the "
                      "image prior's)")  # fmt: skip
    checkpoints: dict[str, str] = Field(
        default_factory=dict,
        description="role -> folder/URI/none (frame_stage1, lalrm, camera_video_model); "
        "default: the registry's latest",
    )
    device: str = Field("", description="cuda | cpu (default: cuda when available)")
    cpu_threads: int = Field(1, description="torch threads when running on the CPU")
    frames_per_level: int = Field(12, description="zoom video frames per level")
    orbit_frames: int = Field(16, description="frames of each level's orbit video")
    fit_steps: int = Field(20, description="Adam steps fitting new surfels")
    refine_steps: int = Field(100, description="Adam steps of the depth refinement")


def world_prefix(rid: str) -> str:
    return f"{WORLDS_PREFIX}/{rid}"


def _read_bytes(location: str) -> tuple[bytes, str]:
    if "://" in location:
        head, _, name = location.rpartition("/")
        return store_from_env_uri(head).get_bytes(name), Path(name).suffix
    path = Path(location)
    if not path.is_file():
        raise WorldRequestError(f"{location}: image not found")
    return path.read_bytes(), path.suffix


def _ensure_request(context, config: GeneratedWorldConfig, store: ArtifactStore, rid: str):
    """The partition's stored request, created from the launchpad config when absent."""
    try:
        return load_request(store, rid)
    except LookupError:
        if not (config.image and config.prompts):
            raise dg.Failure(
                description=f"no world request {rid!r} under {store.uri(request_prefix(rid))}: "
                "add one with `wonderforge add-world-request` (or the world inbox), or give "
                "`image` and `prompts` in the launchpad config"
            ) from None
    data, suffix = _read_bytes(config.image)
    decode_image(data, (16, 16), config.image)
    request = WorldRequest(list(config.prompts), p=config.zoom, steps=config.steps,
                           size=config.size or None, id=rid)  # fmt: skip
    save_request(store, data, suffix, request)
    context.log.info(f"stored request {rid} from the launchpad config")
    return load_request(store, rid)


@dg.asset(
    partitions_def=WORLD_REQUESTS,
    deps=[dg.AssetKey(key) for key in CHECKPOINT_ASSETS],
    group_name="inference",
    pool="gpu",
    kinds={"pytorch"},
    code_version="1",
    description="A multi-scale world per request (WonderZoom progressive detail synthesis with "
    "the zoom stack, LaLRM and the camera-guided video model): .ply per level, zoom and orbit "
    "videos, world.json.",
)
def generated_worlds(
    context: dg.AssetExecutionContext,
    config: GeneratedWorldConfig,
    store: dg.ResourceParam[ArtifactStore],
) -> dg.MaterializeResult:
    rid = context.partition_key
    try:
        request, data = _ensure_request(context, config, store, rid)
        options = GenerationOptions(
            levels=request.levels, p=request.p, steps=request.steps, seed=request.seed,
            size=request.size, zoom_mode=request.zoom_mode, centres=request.centres,
            frames_per_level=config.frames_per_level, orbit_frames=config.orbit_frames,
            fit_steps=config.fit_steps, refine_steps=config.refine_steps,
            **({"device": config.device} if config.device else {}),
        )  # fmt: skip
        side = request.size or 512
        image = decode_image(
            data, (side, side), store.uri(f"{request_prefix(rid)}/{request.image}")
        )
        prefix = world_prefix(rid)
        with tempfile.TemporaryDirectory(prefix="wonderforge-world-") as tmp:
            out = Path(tmp) / "world"
            source = store.uri(f"{request_prefix(rid)}/{request.image}")
            with cpu_threads(options.device, config.cpu_threads):
                generate(image, request.prompts, out, options, dict(config.checkpoints) or None,
                         store, source=source)  # fmt: skip
            manifest = read_manifest(out)
            uris = upload_world(store, out, prefix)
            preview = png_markdown(_png(out / manifest["preview"]), "levels / rendered views")
    except (ValueError, FileNotFoundError, LookupError) as error:
        raise dg.Failure(description=f"world {rid}: {error}") from None
    levels = manifest["levels"]
    checkpoints = manifest["checkpoints"]
    context.log.info(f"world {rid}: {len(levels)} levels uploaded to {store.uri(prefix)}")
    return dg.MaterializeResult(
        metadata={
            "uri": dg.MetadataValue.url(uris["world.json"]),
            "world_uri": dg.MetadataValue.url(store.uri(prefix)),
            "zoom_video": dg.MetadataValue.url(uris["zoom.mp4"]),
            "ply_uris": dg.MetadataValue.json([uris[lv["files"]["ply"]] for lv in levels]),
            "orbit_uris": dg.MetadataValue.json([uris[lv["files"]["orbit"]] for lv in levels]),
            "preview": dg.MetadataValue.md(preview),
            "prompts": dg.MetadataValue.json([lv["prompt"] for lv in levels]),
            "num_levels": len(levels),
            "num_surfels": manifest["num_surfels"],
            "consistency_psnr_db": dg.MetadataValue.json(manifest["consistency_psnr_db"]),
            "checkpoints": dg.MetadataValue.json(checkpoints),
            "fallbacks": dg.MetadataValue.json(manifest["fallbacks"]),
            "generate_seconds": manifest["generate_seconds"],
        },
    )


def _png(path: Path):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))
