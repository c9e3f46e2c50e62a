"""LaLRM inference in torch: latents (or video frames + a video VAE) and cameras → Gaussians,
renders at any cameras, a fly-through camera path, opacity pruning.

A *scene* is one entry of a batch: the Gaussian dict of ``gaussians_from_map`` with the batch
dim removed (means ``[N, 3]``, quats ``[N, 4]``, scales ``[N, 3]``, opacities ``[N]``, colors
``[N, 3]``); ``scene_of`` takes it out of a batch, ``prune_gaussians`` thins it.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from models.autoencoders import encode
from models.geometry import interpolate_poses, plucker_rays

from .model import LaLRM
from .render import render_views

GAUSSIAN_KEYS = ("means", "quats", "scales", "opacities", "colors")


def _batched(x: Tensor, dims: int) -> Tensor:
    """``x`` with a leading batch dim (added when ``x`` has ``dims - 1`` dims)."""
    return x[None] if x.dim() == dims - 1 else x


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def reconstruct(
    model: LaLRM, latents: Tensor, K: Tensor, c2w: Tensor, dtype: torch.dtype | None = None
) -> dict[str, Tensor]:
    """Gaussians of the scenes seen by a context clip.

    latents ``[B, C, T', h, w]`` (or ``[C, T', h, w]``, scaled like ``models.autoencoders.encode``),
    ``K [B, F, 3, 3]`` in pixels of the ``8h x 8w`` video and ``c2w [B, F, 4, 4]`` of its
    ``F = 4 (T' - 1) + 1`` frames (unbatched inputs get B = 1). ``dtype`` (e.g. bf16) runs the
    network under autocast; the Gaussians are float32. Returns ``LaLRM.gaussians``' dict (N =
    F·Hm·Wm Gaussians per scene, ``[B, N, ...]``).
    """
    latents = _batched(latents, 5)
    K, c2w = _batched(K, 4).float(), _batched(c2w, 4).float()
    c = model.config
    H, W = latents.shape[-2] * c.spatial_compression, latents.shape[-1] * c.spatial_compression
    if K.shape[1] != c.temporal_compression * (latents.shape[2] - 1) + 1:
        raise ValueError(
            f"{latents.shape[2]} latent frames need {c.temporal_compression}·"
            f"{latents.shape[2] - 1} + 1 cameras, got K {tuple(K.shape)}"
        )
    plucker = plucker_rays(K, c2w, H, W)
    with _autocast(latents.device, dtype):
        return model.gaussians(latents, plucker, K, c2w)


@torch.no_grad()
def reconstruct_from_video(
    model: LaLRM,
    vae: nn.Module,
    frames: Tensor,
    K: Tensor,
    c2w: Tensor,
    dtype: torch.dtype | None = None,
) -> dict[str, Tensor]:
    """Gaussians from video frames ``[B, F, 3, H, W]`` (or ``[F, 3, H, W]``) in [0, 1]: the frozen
    video ``vae`` encodes them (posterior mode, scaled), then ``reconstruct``."""
    frames = _batched(frames, 5)
    vae_dtype = next(vae.parameters()).dtype
    latents = encode(vae, frames.to(vae_dtype)).float()
    return reconstruct(model, latents, K, c2w, dtype)


def scene_of(gaussians: dict[str, Tensor], index: int = 0) -> dict[str, Tensor]:
    """Scene ``index`` of a batched Gaussian dict: the five Gaussian tensors, ``[N, ...]``."""
    return {k: gaussians[k][index] for k in GAUSSIAN_KEYS}


def prune_gaussians(
    scene: dict[str, Tensor], min_opacity: float = 0.005, max_count: int | None = None
) -> dict[str, Tensor]:
    """Keep the Gaussians of one scene (``[N, ...]``) with opacity ``>= min_opacity``; with
    ``max_count``, only the that many most opaque of them (in their original order)."""
    opacities = scene["opacities"]
    keep = opacities >= min_opacity
    if max_count is not None and int(keep.sum()) > max_count:
        ranked = torch.where(keep, opacities, torch.full_like(opacities, -1.0))
        top = torch.topk(ranked, max_count).indices
        keep = torch.zeros_like(keep)
        keep[top] = True
    return {k: scene[k][keep] for k in GAUSSIAN_KEYS}


@torch.no_grad()
def render_cameras(
    scene: dict[str, Tensor],
    K: Tensor,
    c2w: Tensor,
    height: int,
    width: int,
    background: Tensor | None = None,
    chunk: int = 8,
    backend: str = "auto",
    mode: str = "3dgs",
) -> tuple[Tensor, Tensor]:
    """Render one scene (``[N, ...]``) at ``K [V, 3, 3]``, ``c2w [V, 4, 4]``, ``chunk`` views at a
    time; returns rgb ``[V, 3, H, W]`` and alpha ``[V, 1, H, W]`` (float32, on the scene's
    device)."""
    batched = {k: v[None] for k, v in scene.items()}
    rgb, alpha = [], []
    for start in range(0, len(K), chunk):
        out = render_views(
            batched,
            K[None, start : start + chunk],
            c2w[None, start : start + chunk],
            height,
            width,
            background=background,
            mode=mode,
            backend=backend,
        )
        rgb.append(out.rgb[0])
        alpha.append(out.alpha[0])
    return torch.cat(rgb), torch.cat(alpha)


def flythrough_path(
    K: Tensor, c2w: Tensor, num_frames: int, max_keys: int = 8
) -> tuple[Tensor, Tensor]:
    """A smooth camera path through the context cameras ``K [F, 3, 3]``, ``c2w [F, 4, 4]``: at
    most ``max_keys`` evenly spaced context poses as keyframes (first and last included),
    ``interpolate_poses`` between them (SLERP + Catmull-Rom), ``num_frames`` poses at uniform
    times; intrinsics interpolated linearly. Returns ``K [T, 3, 3]``, ``c2w [T, 4, 4]``."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    F = len(c2w)
    keys = torch.linspace(0, F - 1, min(F, max(2, max_keys))).round().long().unique()
    times = torch.linspace(0.0, 1.0, num_frames, dtype=torch.float64)
    key_times = keys.double() / max(F - 1, 1)
    path = interpolate_poses(c2w[keys].double(), key_times, times).to(c2w.dtype)
    # intrinsics: piecewise linear between the same keys
    pos = times * (len(keys) - 1)
    i = pos.floor().long().clamp(max=len(keys) - 2) if len(keys) > 1 else torch.zeros_like(pos)
    u = (pos - i).to(K.dtype)[:, None, None]
    Ks = K[keys].to(K.dtype)
    if len(keys) == 1:
        return Ks.expand(num_frames, 3, 3).clone(), path
    return (1 - u) * Ks[i] + u * Ks[i + 1], path
