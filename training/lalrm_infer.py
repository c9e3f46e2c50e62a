"""LaLRM inference with files: a checkpoint and a clip → 3D Gaussians, ``.ply`` / ``.splat``,
renders and an mp4 fly-through.

Checkpoints (``load_lalrm``): an export folder, a published folder's URI (``file://`` /
``s3://``), or a registry name ``lalrm_stage2[@version]`` (default: the latest ``lalrm_stage2``,
else the latest ``lalrm_stage1``). Inputs: a clip of a shard set (``--shards URI --clip i``) or a
generated-video folder of ``training.modules.video_model.generate_video`` (``video.mp4``,
``latents.safetensors``, ``meta.json`` with ``K`` and ``c2w``)::

    python -m training.lalrm_infer --shards file:///…/shards/synthetic/w0/manifest.json \\
        --out /tmp/scene                                  # latest stage-2 (or 1) checkpoint
    python -m training.lalrm_infer --checkpoint lalrm_stage1 --sample /tmp/video --out /tmp/s

writes ``scene.ply`` (INRIA 3DGS), ``scene.splat``, ``flythrough.mp4`` (a smooth path through
the context cameras), ``context.png`` (context frames over their re-renders) and ``meta.json``;
every file is written to a temp name and renamed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor
from tqdm.auto import tqdm

from datagen.atomic import atomic_write_bytes
from datagen.clips.clip import Clip
from datagen.gaussian_files import GaussianCloud, write_ply, write_splat
from datagen.previews import contact_sheet
from datagen.shards import read_clips
from datagen.shards.codecs import encode_png
from datagen.store import ArtifactStore, store_from_env, store_from_env_uri
from datagen.video_io import read_mp4, to_uint8_frames, write_mp4
from models.lalrm import (
    flythrough_path,
    prune_gaussians,
    reconstruct,
    reconstruct_from_video,
    render_cameras,
    scene_of,
)
from training.data.stream import set_root
from training.data.video_task import cameras_to_tensor, relative_to, resize_images, rgb_to_tensor
from training.modules.lalrm import LaLRMModule
from training.publish import fetch_published
from training.registry import resolve

MODELS = ("lalrm_stage2", "lalrm_stage1")  # registry names, preferred first
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# ---- checkpoints --------------------------------------------------------------------------------


def resolve_lalrm(store: ArtifactStore, name: str | None = None) -> tuple[str, str]:
    """``(model, store prefix)`` of a published LaLRM: ``name`` = ``model`` or ``model@version``;
    None = the latest ``lalrm_stage2``, else the latest ``lalrm_stage1``."""
    if name:
        model, _, version = name.partition("@")
        return model, resolve(store, model, version or "latest")
    errors = []
    for model in MODELS:
        try:
            return model, resolve(store, model)
        except LookupError as error:
            errors.append(str(error))
    raise LookupError("no published LaLRM checkpoint: " + "; ".join(errors))


def load_lalrm(
    source: str | Path | None = None,
    store: ArtifactStore | None = None,
    device: str | torch.device = "cpu",
    vae: str | None = None,
) -> tuple[LaLRMModule, dict]:
    """A LaLRM module in eval mode on ``device`` and info (``source``, ``uri``, ``model``).

    source: an export folder, a published folder's URI, a registry name (``resolve_lalrm``) or
    None (latest stage 2, else stage 1, in ``store`` or the configured store). vae: replaces
    the VAE the export names (``LaLRMModule.load``)."""
    if source is not None and Path(source).is_dir():
        return LaLRMModule.load(source, device, vae=vae), {"source": str(source), "uri": None}
    with tempfile.TemporaryDirectory(prefix="wonderforge-lalrm-") as tmp:
        if source is not None and "://" in str(source):
            uri, model = str(source).rstrip("/"), None
            folder = fetch_published(store_from_env_uri(uri), "", Path(tmp) / "export")
        else:
            store = store or store_from_env()
            model, prefix = resolve_lalrm(store, None if source is None else str(source))
            uri = store.uri(prefix)
            folder = fetch_published(store, prefix, Path(tmp) / "export")
        module = LaLRMModule.load(folder, device, vae=vae)
    return module, {"source": str(source), "uri": uri, "model": model}


# ---- inputs -------------------------------------------------------------------------------------


@dataclass
class SceneInput:
    """A context clip ready for the LaLRM: frames ``[F, 3, H, W]`` in [0, 1], ``K [F, 3, 3]``,
    ``c2w [F, 4, 4]`` (relative to the first context frame), ``latents [C, T', h, w]`` or None
    (then the module's VAE encodes the frames), ``idx`` (clip frame indices), ``anchor`` (the
    first context frame's original c2w, float64, for expressing other views in the same frame),
    ``key``."""

    frames: Tensor
    K: Tensor
    c2w: Tensor
    latents: Tensor | None
    idx: np.ndarray
    anchor: Tensor
    key: str


def clip_views(
    clip: Clip, idx: np.ndarray, anchor: Tensor, height: int | None, width: int | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Frames ``[V, 3, H, W]``, ``K [V, 3, 3]``, ``c2w [V, 4, 4]`` (float32, relative to ``anchor``)
    of the clip frames ``idx``, resized like the LaLRM task (bilinear, K scaled)."""
    K, c2w = cameras_to_tensor(clip.K[idx], clip.c2w[idx])
    frames, K = resize_images(rgb_to_tensor(clip.rgb[idx]), K, height, width)
    return frames, K.float(), relative_to(c2w, anchor).float()


def clip_context(
    clip: Clip,
    num_context: int,
    stride: int = 1,
    start: int = 0,
    height: int | None = None,
    width: int | None = None,
) -> SceneInput:
    """The context window ``start, start + stride, …`` (``num_context`` frames) of ``clip``; its
    stored latents are used when they cover exactly that window at that size (generated clips:
    the whole clip). Raises ValueError naming the clip when it is too short."""
    span = (num_context - 1) * stride + 1
    if start < 0 or start + span > clip.num_frames:
        raise ValueError(
            f"clip {clip.key!r} has {clip.num_frames} frames; a context of {num_context} frames "
            f"at stride {stride} from frame {start} needs {start + span}"
        )
    idx = start + stride * np.arange(num_context, dtype=np.int64)
    anchor = torch.from_numpy(np.asarray(clip.c2w[idx[0]], np.float64).copy())
    frames, K, c2w = clip_views(clip, idx, anchor, height, width)
    latents = None
    whole = np.array_equal(idx, np.arange(clip.num_frames))
    if clip.latents is not None and whole and tuple(frames.shape[-2:]) == clip.size:
        latents = torch.from_numpy(np.asarray(clip.latents, np.float32).copy())
    return SceneInput(frames, K, c2w, latents, idx, anchor, clip.key)


def sample_folder_context(folder: str | Path) -> SceneInput:
    """A generated-video folder (``video.mp4``, ``latents.safetensors``, ``meta.json`` with ``K``
    and ``c2w``) as a context; latents ``[C, T', h, w]`` (a batch of one is unwrapped)."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder}: no meta.json (not a generated-video folder)")
    meta = json.loads(meta_path.read_text())
    if "K" not in meta or "c2w" not in meta:
        raise ValueError(f"{meta_path}: needs 'K' and 'c2w' (the video's cameras)")
    K = torch.tensor(meta["K"], dtype=torch.float64)
    c2w = torch.tensor(meta["c2w"], dtype=torch.float64)
    frames = rgb_to_tensor(read_mp4(folder / "video.mp4"))
    latents = None
    if (folder / "latents.safetensors").is_file():
        latents = load_file(str(folder / "latents.safetensors"))["latents"].float()
        latents = latents[0] if latents.dim() == 5 else latents
    if len(K) != len(frames) or len(c2w) != len(frames):
        raise ValueError(
            f"{folder}: {len(frames)} video frames but {len(K)} K and {len(c2w)} c2w in meta.json"
        )
    anchor = c2w[0].clone()
    idx = np.arange(len(frames))
    return SceneInput(frames, K.float(), relative_to(c2w, anchor).float(), latents, idx, anchor,
                      folder.name)  # fmt: skip


@torch.no_grad()
def scene_gaussians(
    module: LaLRMModule, context: SceneInput, dtype: torch.dtype | None = None
) -> dict[str, Tensor]:
    """The context's Gaussians (batch of one, ``LaLRM.gaussians``' dict) on the module's device:
    from stored latents when there are some, else through the module's VAE."""
    device = module.background.device
    K, c2w = context.K[None].to(device), context.c2w[None].to(device)
    if context.latents is not None:
        return reconstruct(module.model, context.latents[None].to(device), K, c2w, dtype)
    if module.vae is None:
        raise ValueError(f"{context.key}: no stored latents and the checkpoint has no VAE")
    frames = context.frames[None].to(device)
    return reconstruct_from_video(module.model, module.vae, frames, K, c2w, dtype)


# ---- outputs ------------------------------------------------------------------------------------


def _atomic_mp4(frames: Tensor, path: Path, fps: float) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        write_mp4(frames, tmp, fps=fps)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def even(n: int) -> int:
    """``n`` rounded down to an even number (H.264 yuv420p needs even frame sizes), at least 2."""
    return max(2, n - n % 2)


def render_flythrough(
    scene: dict[str, Tensor],
    K: Tensor,
    c2w: Tensor,
    height: int,
    width: int,
    num_frames: int = 48,
    background: Tensor | None = None,
    chunk: int = 4,
    progress: bool = True,
) -> Tensor:
    """Frames ``[T, 3, H', W']`` (even size) of one scene along ``flythrough_path`` of the context
    cameras ``K [F, 3, 3]``, ``c2w [F, 4, 4]``."""
    Kp, path = flythrough_path(K.cpu(), c2w.cpu(), num_frames)
    H, W = even(height), even(width)
    device = scene["means"].device
    frames = []
    for start in tqdm(range(0, num_frames, chunk), desc="fly-through", disable=not progress):
        rgb, _ = render_cameras(
            scene,
            Kp[start : start + chunk].to(device),
            path[start : start + chunk].to(device),
            H,
            W,
            background=background,
            chunk=chunk,
        )
        frames.append(rgb.cpu())
    return torch.cat(frames)


def write_scene(
    out_dir: str | Path,
    gaussians: dict[str, Tensor],
    context: SceneInput,
    background: Tensor | None = None,
    min_opacity: float = 0.005,
    flythrough_frames: int = 48,
    fps: float = 12.0,
    progress: bool = True,
    meta: dict | None = None,
) -> dict[str, Path]:
    """Write scene 0 of ``gaussians`` (pruned to ``opacity >= min_opacity``) as ``scene.ply`` and
    ``scene.splat``, its fly-through ``flythrough.mp4``, ``context.png`` (context frames over
    their re-renders, up to 6) and ``meta.json``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    full = scene_of(gaussians)
    scene = prune_gaussians(full, min_opacity)
    cloud = GaussianCloud.from_tensors(scene)
    H, W = context.frames.shape[-2:]
    paths = {
        "ply": write_ply(out / "scene.ply", cloud),
        "splat": write_splat(out / "scene.splat", cloud),
    }
    video = render_flythrough(
        scene, context.K, context.c2w, H, W, flythrough_frames, background, progress=progress
    )
    paths["flythrough"] = _atomic_mp4(video, out / "flythrough.mp4", fps)
    picks = np.linspace(0, len(context.frames) - 1, min(6, len(context.frames))).round()
    picks = torch.from_numpy(picks.astype(np.int64))
    device = scene["means"].device
    rerender, _ = render_cameras(
        scene, context.K[picks].to(device), context.c2w[picks].to(device), H, W, background
    )
    sheet = contact_sheet(
        [list(to_uint8_frames(context.frames[picks])), list(to_uint8_frames(rerender.cpu()))],
        tile_height=min(128, H),
    )
    paths["context"] = atomic_write_bytes(out / "context.png", encode_png(sheet, compress_level=6))
    info = {
        "key": context.key,
        "gaussians": len(full["opacities"]),
        "gaussians_written": len(cloud),
        "min_opacity": min_opacity,
        "context_frames": [int(i) for i in context.idx],
        "flythrough_frames": flythrough_frames,
        "fps": fps,
        "K": context.K.tolist(),
        "c2w": context.c2w.tolist(),
        **(meta or {}),
    }
    paths["meta"] = atomic_write_bytes(out / "meta.json", json.dumps(info, indent=2).encode())
    return paths


# ---- command line -------------------------------------------------------------------------------


def _shard_clip(uri: str, index: int) -> Clip:
    """Clip ``index`` (manifest order) of the shard set at ``uri``."""
    count = 0
    for clip in read_clips(store_from_env_uri(set_root(uri)), "", fields={"latents"}):
        if count == index:
            return clip
        count += 1
    raise IndexError(f"{uri}: no clip {index} (the set holds {count})")


def main(argv: list[str] | None = None) -> dict[str, str]:
    """CLI (see the module doc); prints and returns the written paths."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="export folder, URI, or registry name")
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--shards", help="shard-set manifest or folder URI")
    source.add_argument("--sample", help="generated-video folder (video.mp4, latents, meta.json)")
    ap.add_argument("--clip", type=int, default=0, help="clip index in the shard set")
    ap.add_argument("--num-context", type=int, default=None, help="default: the whole clip")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--height", type=int, default=None)
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--min-opacity", type=float, default=0.005)
    ap.add_argument("--frames", type=int, default=48, help="fly-through frames")
    ap.add_argument("--fps", type=float, default=12.0)
    ap.add_argument("--vae", default=None, help="replace the checkpoint's VAE (folder or URI)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    module, info = load_lalrm(a.checkpoint, device=a.device, vae=a.vae)
    if a.sample:
        context = sample_folder_context(a.sample)
    else:
        clip = _shard_clip(a.shards, a.clip)
        n = a.num_context or 4 * ((clip.num_frames - 1) // 4) + 1
        context = clip_context(clip, n, a.stride, a.start, a.height, a.width)
    gaussians = scene_gaussians(module, context, DTYPES[a.dtype])
    paths = write_scene(
        a.out,
        gaussians,
        context,
        module.background,
        a.min_opacity,
        a.frames,
        a.fps,
        meta={"checkpoint": info},
    )
    result = {k: str(v) for k, v in paths.items()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
