"""Files of a generated multi-scale world (one folder, every file written atomically):

    world.json                 manifest (format ``wonderforge.world``, version 1): levels with
                               prompts, cameras, log scales, zoom steps and file names; the
                               checkpoints used (or the fallbacks taken); seeds; settings
    levels/level_<i>.ply       level i's surfels, INRIA 3DGS layout (``datagen.gaussian_files``):
                               ``scale_2`` is the surfel's (negligible) normal thickness
    levels/level_<i>.png       the level's image; coarse_<i>.png the coarse render it was
                               conditioned on; depth_<i>.png its registered depth (colourised)
                               and depth_<i>.npy (float32 z-depth, for coverage in the viewer)
    preview.png                the level images over the world rendered at each level's camera
    zoom.mp4                   continuous zoom from the landscape to the finest level
    orbits/level_<i>.mp4       a short orbit at each level

Surfels read back from a ``.ply`` take their two largest-first tangent axes from the rotation's
first two columns and ``scale_0``/``scale_1``; their native scale is the level's ``log_scale``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import torch

from datagen.atomic import atomic_write_bytes
from datagen.gaussian_files import GaussianCloud, GaussianFileError, read_ply, write_ply
from datagen.shards.codecs import encode_png
from datagen.video_io import read_mp4, write_mp4
from models.surfels import SurfelSet

WORLD_FORMAT = "wonderforge.world"
WORLD_VERSION = 1
MANIFEST = "world.json"
THICKNESS = 1e-3  # normal std-dev written to scale_2, relative to the smaller tangent one


class WorldFileError(ValueError):
    """A world folder or file is malformed; the message names the file and the problem."""


def surfels_to_cloud(s: SurfelSet) -> GaussianCloud:
    """Surfels -> a Gaussian cloud with a thin third axis (see ``THICKNESS``)."""
    thin = s.scales.min(dim=-1, keepdim=True).values * THICKNESS
    return GaussianCloud(
        means=s.means.detach().float().cpu().numpy(),
        scales=torch.cat([s.scales, thin], dim=-1).detach().float().cpu().numpy(),
        quats=s.quats.detach().float().cpu().numpy(),
        opacities=s.opacities.detach().float().cpu().numpy(),
        colors=s.colors[:, :3].detach().float().cpu().numpy(),
    )


def cloud_to_surfels(cloud: GaussianCloud, native_scale: float) -> SurfelSet:
    """A ``.ply`` cloud written by ``surfels_to_cloud`` -> surfels of native scale ``native_scale``."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    n = len(cloud)
    return SurfelSet(
        t(cloud.means), t(cloud.quats), t(cloud.scales[:, :2]), t(cloud.opacities),
        t(cloud.colors), torch.full((n,), float(native_scale)),
    )  # fmt: skip


def write_surfels_ply(path: str | os.PathLike, surfels: SurfelSet) -> Path:
    """One level's surfels as an INRIA-layout ``.ply`` (atomic)."""
    return write_ply(path, surfels_to_cloud(surfels))


def read_surfels_ply(path: str | os.PathLike, native_scale: float) -> SurfelSet:
    """Read a level's ``.ply`` back as surfels (``WorldFileError`` naming the file if malformed)."""
    try:
        return cloud_to_surfels(read_ply(path), native_scale)
    except (GaussianFileError, FileNotFoundError) as error:
        raise WorldFileError(f"{path}: {error}") from None


def to_uint8_image(image) -> np.ndarray:
    """``[3, H, W]`` float in [0, 1] (torch or numpy) or uint8 ``[H, W, 3]`` -> uint8 ``[H, W, 3]``."""
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu().numpy()
    image = np.asarray(image)
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3:
        return image
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an image [3, H, W] or uint8 [H, W, 3], got {image.shape}")
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)


def write_png(path: str | os.PathLike, image) -> Path:
    """PNG of ``image`` (see ``to_uint8_image``), atomically."""
    return atomic_write_bytes(Path(path), encode_png(to_uint8_image(image), compress_level=6))


def write_npy(path: str | os.PathLike, array) -> Path:
    """``.npy`` of an array or tensor, atomically."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return atomic_write_bytes(Path(path), buffer.getvalue())


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """An ``.npy`` array (no pickles; ``WorldFileError`` naming the file if unreadable)."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise WorldFileError(f"{path}: not a readable .npy array ({error})") from None


def write_video(path: str | os.PathLike, frames, fps: float = 12.0) -> Path:
    """H.264 mp4 of frames ``[T, 3, H, W]`` in [0, 1] (even sizes), written to a temp name and
    renamed."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        write_mp4(frames, tmp, fps=fps)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def video_frame_count(path: str | os.PathLike) -> int:
    """Number of decoded frames of an mp4."""
    return int(read_mp4(path).shape[0])


def write_manifest(directory: str | os.PathLike, manifest: dict) -> dict:
    """``world.json`` (format and version added; tensors as lists), atomically; returns the data
    as written (plain JSON types)."""
    data = {"format": WORLD_FORMAT, "version": WORLD_VERSION, **manifest}
    text = json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n"
    atomic_write_bytes(Path(directory) / MANIFEST, text.encode("utf-8"))
    return json.loads(text)


def _jsonable(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_manifest(directory: str | os.PathLike) -> dict:
    """The validated ``world.json`` of a world folder (``WorldFileError`` naming the problem)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise WorldFileError(f"{path}: no world manifest (is {directory} a generated world?)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise WorldFileError(f"{path}: not valid JSON ({error})") from None
    if manifest.get("format") != WORLD_FORMAT:
        raise WorldFileError(
            f"{path}: format {manifest.get('format')!r}, expected {WORLD_FORMAT!r}"
        )
    if manifest.get("version") != WORLD_VERSION:
        raise WorldFileError(f"{path}: unsupported version {manifest.get('version')!r}")
    levels = manifest.get("levels")
    if not isinstance(levels, list) or not levels:
        raise WorldFileError(f"{path}: no levels")
    for i, level in enumerate(levels):
        for key in ("index", "log_scale", "K", "c2w", "files"):
            if key not in level:
                raise WorldFileError(f"{path}: level {i} has no {key!r}")
    return manifest


def load_world_surfels(directory: str | os.PathLike) -> tuple[dict, list[SurfelSet]]:
    """``(manifest, surfels per level)`` of a world folder."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    sets = []
    for level in manifest["levels"]:
        name = level["files"].get("ply")
        if not name:
            raise WorldFileError(f"{directory / MANIFEST}: level {level['index']} has no ply file")
        sets.append(read_surfels_ply(directory / name, level["log_scale"]))
    return manifest, sets


def upload_world(store, directory: str | os.PathLike, prefix: str) -> dict[str, str]:
    """Copy a world folder into the artifact store under ``prefix`` (``world.json`` last, so a
    prefix without it is incomplete); returns ``{relative path: store URI}``."""
    directory = Path(directory)
    read_manifest(directory)  # only complete worlds are uploaded
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    uris = {}
    for path in [*files, directory / MANIFEST]:
        rel = path.relative_to(directory).as_posix()
        store.put_file(f"{prefix}/{rel}", path)
        uris[rel] = store.uri(f"{prefix}/{rel}")
    return uris
