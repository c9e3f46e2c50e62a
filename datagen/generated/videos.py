"""Generated videos -> clips with latents -> the store: per-video files, clip objects, shard sets.

The video model is a callable (``VideoGenerator``) the caller builds: datagen never loads a
model (``training.video_generation.CameraVideoGenerator`` wraps a published camera-guided
video model). Store layout of one batch ``<batch>`` (a ``generation_batches`` partition)::

    generated/<batch>/<key>/video.mp4            H.264 of the decoded frames (for people)
    generated/<batch>/<key>/latents.safetensors  "latents" [C, t, h, w] float32
    generated/<batch>/<key>/condition.png        the conditioning image
    generated/<batch>/<key>/meta.json            cameras, source, seed, generator, settings
    clips/generated/<batch>/<key>.tar            the clip object (lossless frames + latents)
    shards/generated/<batch>/manifest.json, v-*/ the published `generated` shard set

``shards/generated`` is the root LaLRM's stage 2 reads (``published_sets(store,
"shards/generated")``).

Generated clips (``generated_clip``): frames = the decoded video (uint8), ``latents`` = the
sampled latents that decode to them (scaled, as ``models.autoencoders.latents.encode`` returns),
``vae_id`` = the generator's VAE, ``K``/``c2w`` = the conditioning cameras made relative to the
first one (exactly what the model was conditioned on), ``ref_idx = [0]`` (the conditioning view),
no targets. **No depth**: nothing measured it, so ``depth`` is all 0 (the schema's "invalid")
and ``provenance.depth_estimator = NO_DEPTH``, which ``Clip.validate`` accepts in place of
"every frame has valid depth"; ``pose_estimator = "conditioning"``.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.numpy import save as save_safetensors
from torch import Tensor
from tqdm.auto import tqdm

from datagen.clips import Clip, Provenance
from datagen.clips.clip import NO_DEPTH
from datagen.generated.conditioning import Conditioning
from datagen.previews import contact_sheet
from datagen.shards import (
    EncodeOptions,
    Manifest,
    read_clip_object,
    write_clip_object,
    write_shard_set,
)
from datagen.shards.codecs import encode_png
from datagen.store import ArtifactStore
from datagen.video_io import to_uint8_frames, write_mp4

VIDEOS_PREFIX = "generated"
CLIPS_PREFIX = "clips/generated"
SHARDS_PREFIX = "shards/generated"  # contract: LaLRM stage 2 reads published sets under it
DATASET = "generated"
BATCH_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class VideoGenerator(Protocol):
    """A camera-guided image-to-video model.

    checkpoint: URI/version of the weights (provenance); vae_id: the VAE of the latents;
    settings: sampling settings recorded with every video (steps, guidance, ...).
    ``__call__(image [3, H, W] in [0, 1], K [F, 3, 3], c2w [F, 4, 4], caption, seed)`` returns
    latents ``[C, t, h, w]`` and frames ``[F, 3, H, W]`` in [0, 1].
    """

    checkpoint: str
    vae_id: str
    settings: dict[str, Any]

    def __call__(
        self, image: Tensor, K: Tensor, c2w: Tensor, caption: str, seed: int
    ) -> tuple[Tensor, Tensor]: ...


@dataclass
class GeneratedRecord:
    """What one generated video wrote: store keys, byte count, and preview tiles
    (the conditioning image and up to 5 frames, uint8 ``[H, W, 3]``)."""

    key: str
    clip_key: str
    files: dict[str, str]
    bytes: int
    num_frames: int
    preview: list[np.ndarray] = field(default_factory=list)


def check_batch(batch: str) -> str:
    """``batch`` if it is a valid batch name (letters, digits, ``_``, ``-``), else ValueError."""
    if not isinstance(batch, str) or not BATCH_PATTERN.match(batch):
        raise ValueError(
            f"invalid generation batch {batch!r}: letters, digits, '_' and '-' only "
            "(it names store folders and prefixes clip keys)"
        )
    return batch


def videos_prefix(batch: str) -> str:
    return f"{VIDEOS_PREFIX}/{check_batch(batch)}"


def clips_prefix(batch: str) -> str:
    return f"{CLIPS_PREFIX}/{check_batch(batch)}"


def shards_prefix(batch: str) -> str:
    return f"{SHARDS_PREFIX}/{check_batch(batch)}"


def clip_object_keys(store: ArtifactStore, batch: str) -> list[str]:
    """The batch's clip objects (``clips/generated/<batch>/*.tar``), sorted."""
    return sorted(k for k in store.list(clips_prefix(batch)) if k.endswith(".tar"))


def relative_path(c2w: np.ndarray) -> np.ndarray:
    """``c2w [F, 4, 4]`` -> the path in the first camera's frame (float64; frame 0 = identity)."""
    c2w = np.asarray(c2w, np.float64)
    return np.linalg.inv(c2w[0]) @ c2w


def generated_clip(
    key: str,
    cond: Conditioning,
    latents: np.ndarray,
    frames: np.ndarray,
    checkpoint: str,
    vae_id: str,
    fps: float = 8.0,
    extra: dict[str, Any] | None = None,
) -> Clip:
    """A validated clip of one generated video (see the module docstring for its fields).

    latents ``[C, t, h, w]`` float; frames uint8 ``[F, H, W, 3]`` with F = the path length.
    """
    F = cond.num_frames
    if frames.shape[0] != F:
        raise ValueError(f"{key}: the generator returned {frames.shape[0]} frames for {F} cameras")
    if frames.shape[1:3] != cond.image.shape[:2]:
        raise ValueError(
            f"{key}: frames are {frames.shape[1]}x{frames.shape[2]}, the conditioning image "
            f"{cond.image.shape[0]}x{cond.image.shape[1]}"
        )
    H, W = frames.shape[1:3]
    provenance = Provenance(
        source_kind="generated",
        scene_id=cond.name,
        video_id=key,
        license="generated by wonderforge's camera-guided video model",
        pose_estimator="conditioning",
        depth_estimator=NO_DEPTH,
        generator_checkpoint=checkpoint,
        extra={
            **cond.source,
            "first_c2w": np.asarray(cond.c2w[0], np.float64).tolist(),
            **(extra or {}),
        },
    )
    clip = Clip(
        key=key,
        rgb=np.ascontiguousarray(frames, np.uint8),
        K=np.asarray(cond.K, np.float32),
        c2w=relative_path(cond.c2w).astype(np.float32),
        depth=np.zeros((F, H, W), np.float32),
        provenance=provenance,
        ref_idx=[0],
        target_idx=[],
        caption=cond.caption,
        latents=np.ascontiguousarray(latents, np.float32),
        vae_id=vae_id,
        timestamps=np.arange(F, dtype=np.float64) / fps,
        frame_ids=list(range(F)),
    )
    return clip.validate()


def _preview_tiles(clip: Clip, image: np.ndarray, tiles: int = 5) -> list[np.ndarray]:
    picks = sorted(set(np.linspace(0, clip.num_frames - 1, tiles).round().astype(int).tolist()))
    return [image, *(clip.rgb[i] for i in picks)]


def write_generated_video(
    store: ArtifactStore,
    batch: str,
    clip: Clip,
    cond: Conditioning,
    fps: float = 8.0,
    meta: dict[str, Any] | None = None,
) -> GeneratedRecord:
    """Write one video's files and its clip object (each an atomic store write)."""
    base = f"{videos_prefix(batch)}/{clip.key}"
    files = {
        "video": f"{base}/video.mp4",
        "latents": f"{base}/latents.safetensors",
        "condition": f"{base}/condition.png",
        "meta": f"{base}/meta.json",
    }
    with tempfile.TemporaryDirectory(prefix="generated_") as tmp:
        store.put_file(files["video"], write_mp4(clip.rgb, Path(tmp) / "video.mp4", fps))
    store.put_bytes(files["latents"], save_safetensors({"latents": clip.latents}))
    store.put_bytes(files["condition"], encode_png(cond.image, 6))
    store.put_json(
        files["meta"],
        {
            "key": clip.key,
            "batch": batch,
            "num_frames": clip.num_frames,
            "height": clip.size[0],
            "width": clip.size[1],
            "fps": fps,
            "caption": clip.caption,
            "K": clip.K.tolist(),
            "c2w": clip.c2w.tolist(),
            "latents_shape": list(clip.latents.shape),
            "vae_id": clip.vae_id,
            "provenance": clip.provenance.to_dict(),
            **(meta or {}),
        },
    )
    clip_key = f"{clips_prefix(batch)}/{clip.key}.tar"
    size = write_clip_object(store, clip_key, clip)
    size += sum(store.size(k) for k in files.values())
    return GeneratedRecord(
        clip.key, clip_key, files, size, clip.num_frames, _preview_tiles(clip, cond.image)
    )


def generate_batch(
    store: ArtifactStore,
    batch: str,
    generator: VideoGenerator,
    conditionings: Sequence[Conditioning],
    seed: int = 0,
    fps: float = 8.0,
    progress: bool = True,
) -> list[GeneratedRecord]:
    """Generate one video per conditioning and write it (``write_generated_video``).

    The batch's earlier files and clip objects are removed first, so a re-run replaces the
    batch. Video ``i`` is keyed ``<batch>-<i:05d>`` and sampled with seed ``seed + i``.
    """
    check_batch(batch)
    store.delete_prefix(videos_prefix(batch))
    store.delete_prefix(clips_prefix(batch))
    records = []
    for i, cond in enumerate(tqdm(conditionings, desc=f"generate {batch}", disable=not progress)):
        key, video_seed = f"{batch}-{i:05d}", seed + i
        image = torch.tensor(cond.image).permute(2, 0, 1).float() / 255
        K = torch.from_numpy(np.asarray(cond.K, np.float32))
        c2w = torch.from_numpy(np.asarray(cond.c2w, np.float32))
        latents, frames = generator(image, K, c2w, cond.caption, video_seed)
        settings = {**dict(generator.settings), "seed": video_seed}
        clip = generated_clip(
            key,
            cond,
            latents.detach().float().cpu().numpy(),
            to_uint8_frames(frames),
            generator.checkpoint,
            generator.vae_id,
            fps,
            extra={"batch": batch, "generation": settings},
        )
        records.append(write_generated_video(store, batch, clip, cond, fps, {"settings": settings}))
    return records


def write_generated_shards(
    store: ArtifactStore,
    batch: str,
    options: EncodeOptions | None = None,
    target_shard_bytes: int = 256 * 2**20,
) -> Manifest:
    """Pack the batch's clip objects into the published set ``shards/generated/<batch>``."""
    keys = clip_object_keys(store, batch)
    if not keys:
        raise ValueError(f"no generated clips under {store.uri(clips_prefix(batch))}")
    return write_shard_set(
        store,
        shards_prefix(batch),
        (read_clip_object(store, k) for k in keys),
        dataset=DATASET,
        partition=batch,
        options=options,
        target_shard_bytes=target_shard_bytes,
        progress=False,
    )


def generated_preview(records: Sequence[GeneratedRecord], rows: int = 3) -> np.ndarray:
    """Contact sheet: per video (first ``rows``) the conditioning image, then frames spread
    over the video."""
    if not records:
        raise ValueError("no generated videos to preview")
    return contact_sheet([r.preview for r in records[:rows]], tile_height=72)
