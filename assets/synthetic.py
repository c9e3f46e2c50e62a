"""Synthetic data: procedural worlds -> rendered clips -> shard sets (one partition per world).

Each asset handles a partition key range (a backfill batch of `WORLD_BATCHES`): it loops over
`context.partition_keys`; a one-world run records that world's metadata, a batch records the
per-world summaries under `worlds` plus the first world's preview.
"""

import tempfile
from pathlib import Path

import dagster as dg

from assets.automation import CHEAP_DERIVED, WORLD_BATCHES
from assets.checks import shard_integrity_result, shard_integrity_spec
from assets.partitions import WORLDS
from assets.shard_sets import ShardSetConfig, write_clip_objects
from datagen.previews import clip_contact_sheet, png_markdown
from datagen.shards import (
    write_clip_object,
)
from datagen.shards.codecs import encode_png
from datagen.store import ArtifactStore
from datagen.trajectories.re10k_export import export_realestate10k
from datagen.worlds import generate_world, make_clip, preview_image
from datagen.worlds.catalog import load_spec

CLIPS_PREFIX = "clips/synthetic"
SHARDS_PREFIX = "shards/synthetic"


class SyntheticClipsConfig(dg.Config):
    """How many clips of which recipe to render per world, and at what size."""

    worldfm_clips: int = 2
    wonderland_clips: int = 0
    wonderland_seen: int = 13
    wonderland_stride: int = 2
    wonderland_unseen: int = 8
    height: int = 128
    width: int = 128
    fov_deg: float = 60.0
    supersample: int = 1
    seed: int = 0


def _clip_keys(store: ArtifactStore, world_id: str) -> list[str]:
    return [k for k in store.list(f"{CLIPS_PREFIX}/{world_id}") if k.endswith(".tar")]


def batch_metadata(per_world: dict[str, dict]) -> dict:
    """Materialization metadata of a run over `per_world` (world id -> that world's metadata):
    the world's own metadata for one world; for a batch, `partitions`, the per-world scalar
    fields and URIs as JSON under `worlds`, and the first world's preview."""
    if len(per_world) == 1:
        return next(iter(per_world.values()))
    summaries = {
        world: {
            name: getattr(value, "value", value)
            for name, value in meta.items()
            if isinstance(value, int | float | str | dg.UrlMetadataValue)
        }
        for world, meta in per_world.items()
    }
    first = next(iter(per_world.values()))
    preview = {"preview": first["preview"]} if "preview" in first else {}
    return {"partitions": len(per_world), "worlds": dg.MetadataValue.json(summaries), **preview}


@dg.asset(
    partitions_def=WORLDS,
    backfill_policy=WORLD_BATCHES,
    group_name="data",
    kinds={"python", "open3d"},
    code_version="1",
    description="A procedural world (indoor, outdoor or tabletop) generated from its registered "
    "spec: world description JSON with the scene graph and per-level captions, and a preview.",
)
def synthetic_worlds(
    context: dg.AssetExecutionContext, store: dg.ResourceParam[ArtifactStore]
) -> dg.MaterializeResult:
    per_world = {}
    for world_id in context.partition_keys:
        per_world[world_id] = _generate_world(store, world_id)
        context.log.info(f"generated {world_id}")
    return dg.MaterializeResult(metadata=batch_metadata(per_world))


def _generate_world(store: ArtifactStore, world_id: str) -> dict:
    """Generate the registered world, store its description JSON and preview; its metadata."""
    world = generate_world(load_spec(store, world_id))
    description = world.describe()
    preview = preview_image(world, 192, 192)
    store.put_json(f"worlds/{world_id}/world.json", description)
    store.put_bytes(f"worlds/{world_id}/preview.png", encode_png(preview, 6))
    captions = "\n".join(f"{i}. {c}" for i, c in enumerate(description["captions"]))
    return {
        "uri": dg.MetadataValue.url(store.uri(f"worlds/{world_id}/world.json")),
        "family": world.spec.family,
        "spec": dg.MetadataValue.json(world.spec.to_dict()),
        "captions": dg.MetadataValue.md(captions),
        "triangles": world.num_triangles,
        "preview": dg.MetadataValue.md(png_markdown(preview, world_id)),
    }


@dg.asset(
    partitions_def=WORLDS,
    backfill_policy=WORLD_BATCHES,
    deps=[synthetic_worlds],
    group_name="data",
    kinds={"python", "open3d"},
    code_version="1",
    description="Clips rendered along sampled collision-free trajectories (WorldFM 16-frame and "
    "Wonderland strided recipes) with exact depth, normals, poses and point-cloud anchors; one "
    "store object per clip plus RealEstate10K camera files.",
)
def synthetic_clips(
    context: dg.AssetExecutionContext,
    config: SyntheticClipsConfig,
    store: dg.ResourceParam[ArtifactStore],
) -> dg.MaterializeResult:
    per_world = {w: _render_clips(context, config, store, w) for w in context.partition_keys}
    return dg.MaterializeResult(metadata=batch_metadata(per_world))


def _render_clips(context, config: SyntheticClipsConfig, store: ArtifactStore, world_id: str):
    """Render the world's clips (replacing earlier ones) with their camera files; its metadata."""
    world = generate_world(load_spec(store, world_id))
    store.delete_prefix(f"{CLIPS_PREFIX}/{world_id}")
    plan = [("worldfm", i, {}) for i in range(config.worldfm_clips)] + [
        (
            "wonderland",
            i,
            {
                "num_seen": config.wonderland_seen,
                "stride": config.wonderland_stride,
                "num_unseen": config.wonderland_unseen,
            },
        )
        for i in range(config.wonderland_clips)
    ]
    total_bytes, frames, preview = 0, 0, None
    for recipe, index, kwargs in plan:
        seed = config.seed * 1000 + index
        clip = make_clip(
            world,
            recipe,
            seed=seed,
            H=config.height,
            W=config.width,
            fov_deg=config.fov_deg,
            supersample=config.supersample,
            key=f"{world_id}-{recipe}-{seed}",
            **kwargs,
        )
        base = f"{CLIPS_PREFIX}/{world_id}/{clip.key}"
        total_bytes += write_clip_object(store, f"{base}.tar", clip)
        export_realestate10k_to_store(store, f"{base}.txt", clip)
        frames += clip.num_frames
        preview = preview if preview is not None else clip_contact_sheet(clip)
        context.log.info(f"rendered {clip.key}: {clip.num_frames} frames")
    return {
        "clips": len(plan),
        "frames": frames,
        "bytes": total_bytes,
        "uri": dg.MetadataValue.url(store.uri(f"{CLIPS_PREFIX}/{world_id}")),
        "preview": dg.MetadataValue.md(png_markdown(preview, "rgb / depth / anchors"))
        if preview is not None
        else "no clips",
    }


def export_realestate10k_to_store(store: ArtifactStore, key: str, clip) -> None:
    """The clip's cameras as a RealEstate10K txt next to the clip object."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cameras.txt"
        height, width = clip.size
        url = f"synthetic://{clip.provenance.scene_id}/{clip.key}"
        export_realestate10k(
            path, clip.c2w, clip.K[0], height, width, url=url, frame_ids=clip.frame_ids
        )
        store.put_file(key, path)


@dg.asset(
    partitions_def=WORLDS,
    backfill_policy=WORLD_BATCHES,
    automation_condition=CHEAP_DERIVED,
    deps=[synthetic_clips],
    group_name="data",
    kinds={"webdataset"},
    code_version="1",
    check_specs=[shard_integrity_spec("synthetic_shards")],
    description="The world's clips packed into a webdataset shard set (schema v1) with a "
    "manifest; replaced atomically on re-materialization.",
)
def synthetic_shards(
    context: dg.AssetExecutionContext,
    config: ShardSetConfig,
    store: dg.ResourceParam[ArtifactStore],
):
    worlds = context.partition_keys
    for world_id in worlds:  # fail before writing anything if a world has no clips
        if not _clip_keys(store, world_id):
            raise ValueError(f"no clips under {store.uri(f'{CLIPS_PREFIX}/{world_id}')}")
    per_world = {
        world_id: write_clip_objects(
            store,
            _clip_keys(store, world_id),
            f"{SHARDS_PREFIX}/{world_id}",
            "synthetic",
            world_id,
            config,
        )
        for world_id in worlds
    }
    yield dg.MaterializeResult(metadata=batch_metadata(per_world))
    yield shard_integrity_result(store, [f"{SHARDS_PREFIX}/{w}" for w in worlds])
