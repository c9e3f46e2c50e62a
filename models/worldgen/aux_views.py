"""Auxiliary views around a zoom camera (WonderZoom §3.2) from a camera-guided video model.

An ``AuxViewGenerator`` is any callable ``(image [3, H, W], K [F, 3, 3], c2w [F, 4, 4], seed,
scene_scale) -> frames [F, 3, H, W]`` whose frame 0 is the given image at camera 0.
``VideoModelAuxViews`` wraps the platform's ``CameraVideoSampler`` (Wonderland §3.2): the image
is resized to the model's resolution, the cameras are made relative to camera 0 and divided by
``scene_scale`` (the distance to the orbit's target: the training clips are scale-normalised),
and the frames are resized back. ``aux_cameras`` is the default path: a small orbit around the
zoom target that starts at the zoom camera.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from models.geometry import invert_se3, scale_K

from .cameras import orbit_cameras


class AuxViewGenerator(Protocol):
    name: str

    def __call__(
        self, image: Tensor, K: Tensor, c2w: Tensor, seed: int = 0, scene_scale: float = 1.0
    ) -> Tensor: ...


def aux_cameras(
    K: Tensor, c2w: Tensor, target: Tensor, num_frames: int = 9, max_angle_deg: float = 8.0
) -> tuple[Tensor, Tensor]:
    """``K [F, 3, 3]``, ``c2w [F, 4, 4]``: an orbit of ``num_frames`` views around ``target [3]``
    starting at ``(K [3, 3], c2w [4, 4])`` (``cameras.orbit_cameras``)."""
    c2ws = orbit_cameras(c2w, target, num_frames, max_angle_deg)
    return K[None].expand(num_frames, 3, 3).clone(), c2ws


def normalised_path(c2w: Tensor, scene_scale: float) -> Tensor:
    """``c2w [F, 4, 4]`` relative to camera 0, translations divided by ``scene_scale``."""
    rel = invert_se3(c2w[:1].to(torch.float64)) @ c2w.to(torch.float64)
    rel[:, :3, 3] = rel[:, :3, 3] / scene_scale
    return rel


def resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    """``[..., 3, H, W]`` -> ``[..., 3, *size]`` (bilinear, antialiased)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    lead = images.shape[:-3]
    x = images.reshape(-1, *images.shape[-3:]).float()
    y = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return y.reshape(*lead, images.shape[-3], *size).to(images.dtype)


class VideoModelAuxViews:
    """Aux views from a ``models.video.CameraVideoSampler`` (see the module doc). ``size``: the
    model's ``(H, W)`` (None: the image's); the number of cameras must be ``4k + 1``."""

    def __init__(
        self,
        sampler,
        size: tuple[int, int] | None = None,
        prompt: str = "",
        steps: int = 25,
        guidance_scale: float = 6.0,
        name: str = "camera_video_model",
    ):
        self.sampler, self.size, self.prompt = sampler, size, prompt
        self.steps, self.guidance_scale, self.name = steps, guidance_scale, name

    @torch.no_grad()
    def __call__(
        self, image: Tensor, K: Tensor, c2w: Tensor, seed: int = 0, scene_scale: float = 1.0
    ) -> Tensor:
        H, W = image.shape[-2:]
        h, w = self.size or (H, W)
        F_ = c2w.shape[0]
        if (F_ - 1) % 4:
            raise ValueError(f"{self.name}: {F_} aux cameras; the video model needs F = 4k + 1")
        img = resize(image, (h, w)).clamp(0, 1)
        Ks = scale_K(K.to(torch.float32), w / W, h / H)
        rel = normalised_path(c2w, scene_scale).float()
        _, frames = self.sampler.sample(
            img, Ks, rel, prompt=self.prompt, num_frames=F_, steps=self.steps,
            guidance_scale=self.guidance_scale, seed=seed,
        )  # fmt: skip
        frames = resize(frames.to(image), (H, W)).clamp(0, 1)
        frames[0] = image
        return frames
