"""Small previews of published models, cheap enough to compute right after training (CPU)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from datagen.previews import contact_sheet
from datagen.shards import read_clips
from datagen.store import ArtifactStore
from training.publish import fetch_published

MAX_SIDE = 128


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with `n` intra-op threads (previews are small; more threads only contend)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _frames_tensor(rgb: np.ndarray, max_side: int = MAX_SIDE) -> torch.Tensor:
    """uint8 ``[F, H, W, 3]`` → float ``[F, 3, h, w]`` in [0, 1], longer side <= max_side, h and
    w multiples of 8 (what the VAEs need)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(0, 3, 1, 2).float() / 255.0
    H, W = x.shape[-2:]
    scale = min(1.0, max_side / max(H, W))
    h, w = max(8, round(H * scale / 8) * 8), max(8, round(W * scale / 8) * 8)
    if (h, w) != (H, W):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1)


def _uint8(x: torch.Tensor) -> list[np.ndarray]:
    """``[N, 3, H, W]`` in [0, 1] → N uint8 ``[H, W, 3]`` tiles."""
    return list((x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy())


@torch.no_grad()
def reconstruct(vae: torch.nn.Module, kind: str, rgb: np.ndarray, tiles: int = 4):
    """(originals, reconstructions, psnr dB) of `tiles` frames of one clip's ``rgb`` [F, H, W, 3].

    image: `tiles` evenly spaced frames, each through the VAE; video: the first 9 (or 1) frames
    as one video (the CogVideoX decoder needs F = 8k + 1), `tiles` of them shown."""
    from models.autoencoders import decode, encode

    x = _frames_tensor(rgb)
    if kind == "image":
        picks = np.linspace(0, len(x) - 1, min(tiles, len(x))).round().astype(int)
        x = x[picks]
        recon = decode(vae, encode(vae, x))
    elif kind == "video":
        x = x[: 9 if len(x) >= 9 else 1]
        recon = decode(vae, encode(vae, x[None]))[0]
        picks = np.linspace(0, len(x) - 1, min(tiles, len(x))).round().astype(int)
        x, recon = x[picks], recon[picks]
    else:
        raise ValueError(f"unknown VAE kind {kind!r}: image or video")
    mse = (recon.float() - x).pow(2).mean().clamp_min(1e-10)
    return _uint8(x), _uint8(recon.float()), float(-10 * torch.log10(mse))


def vae_reconstruction_sheet(
    store: ArtifactStore, checkpoint_prefix: str, kind: str, shard_prefix: str
) -> tuple[np.ndarray, float]:
    """Contact sheet (row 1: original frames, row 2: reconstructions) of the published VAE at
    `checkpoint_prefix` on the first clip of the shard set `shard_prefix`, and its PSNR."""
    from models.autoencoders import load_image_vae, load_video_vae

    load = load_video_vae if kind == "video" else load_image_vae
    with tempfile.TemporaryDirectory(prefix="wonderforge-preview-") as tmp:
        vae = load(fetch_published(store, checkpoint_prefix, Path(tmp) / "vae")).eval()
    clip = next(iter(read_clips(store, shard_prefix, fields=set())))
    with torch_threads(1):
        originals, recons, psnr = reconstruct(vae, kind, clip.rgb)
    return contact_sheet([originals, recons], tile_height=64), psnr
