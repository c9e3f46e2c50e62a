"""Shard schema v1: how one Clip becomes the members of one webdataset sample (and back).

Member names are `<key>.<field>` where `<key>` has no dots (webdataset splits at the first dot).
See docs/shard-schema.md for the full table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datagen.clips import Clip, ClipValidationError, Provenance
from datagen.shards.codecs import (
    decode_image,
    decode_json,
    decode_npy,
    encode_jpeg,
    encode_json,
    encode_npy,
    encode_png,
)

SCHEMA_VERSION = 1
META = "meta.json"
RGB_FORMATS = ("png", "jpeg")
DEPTH_FORMATS = ("png16", "npy16")


class ShardFormatError(ValueError):
    """A sample is malformed; the message starts with `<shard>:<key>`."""


class SchemaVersionError(ShardFormatError):
    """A sample was written with a schema version this reader does not read."""


@dataclass(frozen=True)
class EncodeOptions:
    """How frames are encoded. PNG RGB is lossless; JPEG trades exactness for size."""

    rgb_format: str = "png"
    jpeg_quality: int = 95
    depth_format: str = "png16"
    png_compress_level: int = 1

    def __post_init__(self):
        if self.rgb_format not in RGB_FORMATS:
            raise ValueError(f"rgb_format must be one of {RGB_FORMATS}, got {self.rgb_format!r}")
        if self.depth_format not in DEPTH_FORMATS:
            raise ValueError(
                f"depth_format must be one of {DEPTH_FORMATS}, got {self.depth_format!r}"
            )
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")


def frame_field(name: str, index: int, extension: str) -> str:
    """Per-frame member field, e.g. frame_field("rgb", 3, "png") == "rgb0003.png"."""
    return f"{name}{index:04d}.{extension}"


def _depth_scale(depth: np.ndarray) -> float:
    peak = float(depth.max())
    return peak / 65535.0 if peak > 0 else 1.0


def _encode_normals(normals: np.ndarray, level: int) -> bytes:
    valid = np.linalg.norm(normals, axis=-1, keepdims=True) > 0
    coded = np.clip(np.rint((normals + 1.0) * 127.0) + 1.0, 1, 255).astype(np.uint8)
    return encode_png(np.where(valid, coded, 0).astype(np.uint8), level)


def _decode_normals(data: bytes) -> np.ndarray:
    coded = decode_image(data).astype(np.float32)
    normals = (coded - 1.0) / 127.0 - 1.0
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    normals = np.where(length > 0, normals / np.maximum(length, 1e-12), 0.0)
    return np.where((coded == 0).all(axis=-1, keepdims=True), 0.0, normals).astype(np.float32)


def encode_clip(clip: Clip, options: EncodeOptions = EncodeOptions()) -> dict[str, bytes]:
    """Validate `clip` and encode it: {field: bytes} (member `<key>.<field>` in the tar)."""
    clip.validate()
    level = options.png_compress_level
    members: dict[str, bytes] = {
        "K.npy": encode_npy(clip.K),
        "c2w.npy": encode_npy(clip.c2w),
    }
    depth_scale = _depth_scale(clip.depth)
    for i in range(clip.num_frames):
        if options.rgb_format == "png":
            members[frame_field("rgb", i, "png")] = encode_png(clip.rgb[i], level)
        else:
            members[frame_field("rgb", i, "jpg")] = encode_jpeg(clip.rgb[i], options.jpeg_quality)
        if options.depth_format == "png16":
            quantised = np.clip(np.rint(clip.depth[i] / depth_scale), 0, 65535).astype(np.uint16)
            members[frame_field("depth", i, "png")] = encode_png(quantised, level)
        else:
            members[frame_field("depth", i, "npy")] = encode_npy(clip.depth[i].astype(np.float16))
        if clip.depth_conf is not None:
            conf = np.rint(clip.depth_conf[i] * 255.0).astype(np.uint8)
            members[frame_field("conf", i, "png")] = encode_png(conf, level)
        if clip.normals is not None:
            members[frame_field("normal", i, "png")] = _encode_normals(clip.normals[i], level)
    if clip.pcr_rgb is not None:
        for j in range(len(clip.target_idx)):
            members[frame_field("pcr", j, "png")] = encode_png(clip.pcr_rgb[j], level)
            members[frame_field("pcrmask", j, "png")] = encode_png(clip.pcr_mask[j], level)
    if clip.latents is not None:
        members["latents.npy"] = encode_npy(clip.latents)
    height, width = clip.size
    meta = {
        "schema_version": SCHEMA_VERSION,
        "key": clip.key,
        "num_frames": clip.num_frames,
        "height": height,
        "width": width,
        "ref_idx": [int(i) for i in clip.ref_idx],
        "target_idx": [int(i) for i in clip.target_idx],
        "caption": clip.caption,
        "level_captions": list(clip.level_captions),
        "vae_id": clip.vae_id,
        "timestamps": None if clip.timestamps is None else clip.timestamps.tolist(),
        "frame_ids": None if clip.frame_ids is None else [int(i) for i in clip.frame_ids],
        "provenance": clip.provenance.to_dict(),
        "encoding": {
            "rgb": options.rgb_format,
            "jpeg_quality": options.jpeg_quality if options.rgb_format == "jpeg" else None,
            "depth": options.depth_format,
            "depth_scale": depth_scale,
        },
        "members": sorted(members),
    }
    members[META] = encode_json(meta)
    return members


def read_meta(members: dict[str, bytes], where: str) -> dict:
    """Parse and version-check a sample's meta.json."""
    if META not in members:
        raise ShardFormatError(f"{where}: missing member '{META}'")
    try:
        meta = decode_json(members[META])
    except (UnicodeDecodeError, ValueError) as error:
        raise ShardFormatError(f"{where}: malformed {META}: {error}") from None
    if not isinstance(meta, dict):
        raise ShardFormatError(f"{where}: {META} must hold a JSON object")
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{where}: schema version {version!r}, this reader reads version {SCHEMA_VERSION} only"
        )
    return meta


def _stack(members, names, decode, where) -> np.ndarray:
    try:
        return np.stack([decode(members[name]) for name in names])
    except (OSError, ValueError) as error:
        raise ShardFormatError(f"{where}: cannot decode {names[0]}...: {error}") from None


def decode_clip(members: dict[str, bytes], where: str, fields: set[str] | None = None) -> Clip:
    """Rebuild a Clip from a sample's members. `where` = "<shard uri>:<key>" for messages.

    fields: optional subset of {"normals", "pcr", "latents", "conf"} to decode (others skipped
    to save time); None decodes everything present.
    """
    meta = read_meta(members, where)
    missing = [name for name in meta.get("members", []) if name not in members]
    if missing:
        raise ShardFormatError(f"{where}: missing member(s) {missing[:5]}")
    try:
        num_frames = int(meta["num_frames"])
        encoding = meta["encoding"]
        frames = range(num_frames)
        targets = range(len(meta["target_idx"]))
        rgb_ext = "png" if encoding["rgb"] == "png" else "jpg"
        want = (lambda name: True) if fields is None else (lambda name: name in fields)
        rgb = _stack(members, [frame_field("rgb", i, rgb_ext) for i in frames], decode_image, where)
        if encoding["depth"] == "png16":
            names = [frame_field("depth", i, "png") for i in frames]
            depth = _stack(members, names, decode_image, where).astype(np.float32)
            depth *= np.float32(encoding["depth_scale"])
        else:
            names = [frame_field("depth", i, "npy") for i in frames]
            depth = _stack(members, names, decode_npy, where).astype(np.float32)
        conf = normals = pcr_rgb = pcr_mask = latents = None
        if frame_field("conf", 0, "png") in members and want("conf"):
            names = [frame_field("conf", i, "png") for i in frames]
            conf = _stack(members, names, decode_image, where).astype(np.float32) / 255.0
        if frame_field("normal", 0, "png") in members and want("normals"):
            names = [frame_field("normal", i, "png") for i in frames]
            normals = _stack(members, names, _decode_normals, where)
        if frame_field("pcr", 0, "png") in members and want("pcr"):
            pcr_rgb = _stack(
                members, [frame_field("pcr", j, "png") for j in targets], decode_image, where
            )
            names = [frame_field("pcrmask", j, "png") for j in targets]
            pcr_mask = _stack(members, names, decode_image, where) > 127
        if "latents.npy" in members and want("latents"):
            latents = decode_npy(members["latents.npy"])
        timestamps = meta.get("timestamps")
        clip = Clip(
            key=meta["key"],
            rgb=rgb,
            K=decode_npy(members["K.npy"]),
            c2w=decode_npy(members["c2w.npy"]),
            depth=depth,
            depth_conf=conf,
            normals=normals,
            ref_idx=list(meta["ref_idx"]),
            target_idx=list(meta["target_idx"]),
            pcr_rgb=pcr_rgb,
            pcr_mask=pcr_mask,
            caption=meta["caption"],
            level_captions=list(meta["level_captions"]),
            latents=latents,
            vae_id=meta.get("vae_id"),
            timestamps=None if timestamps is None else np.asarray(timestamps, dtype=np.float64),
            frame_ids=meta.get("frame_ids"),
            provenance=Provenance.from_dict(meta["provenance"]),
        )
        return clip.validate()
    except ShardFormatError:
        raise
    except (KeyError, TypeError, ValueError, ClipValidationError) as error:
        detail = f"missing field {error}" if isinstance(error, KeyError) else str(error)
        raise ShardFormatError(f"{where}: {detail}") from None
